// op_counter.cpp: the thread-local chain of live OpCounters and the count_macs hook.
#include "engine/profile/op_counter.h"

#include <cstring>
#include <stdexcept>

namespace rv::profile {

namespace {
// The innermost counter alive on this thread; each links to the one alive before it.
thread_local OpCounter* t_innermost = nullptr;
}  // namespace

OpCounter::OpCounter() : outer_(t_innermost) { t_innermost = this; }

OpCounter::~OpCounter() {
  // Scoped (RAII) use destroys counters in reverse order of creation; anything else would
  // leave a dangling pointer in the chain.
  if (t_innermost == this) t_innermost = outer_;
}

void OpCounter::add(const char* op, int64_t macs) {
  total_ += macs;
  for (Entry& e : entries_)
    if (e.op == op || std::strcmp(e.op, op) == 0) {
      e.macs += macs;
      ++e.calls;
      return;
    }
  entries_.push_back({op, macs, 1});
}

int64_t OpCounter::macs_of(const std::string& op) const {
  for (const Entry& e : entries_)
    if (op == e.op) return e.macs;
  return 0;
}

int64_t OpCounter::calls_of(const std::string& op) const {
  for (const Entry& e : entries_)
    if (op == e.op) return e.calls;
  return 0;
}

std::vector<std::pair<std::string, int64_t>> OpCounter::by_op() const {
  std::vector<std::pair<std::string, int64_t>> out;
  for (const Entry& e : entries_) out.emplace_back(e.op, e.macs);
  return out;
}

void OpCounter::reset() {
  total_ = 0;
  entries_.clear();
}

void count_macs(const char* op, int64_t macs) {
  for (OpCounter* c = t_innermost; c != nullptr; c = c->outer_) c->add(op, macs);
}

}  // namespace rv::profile
