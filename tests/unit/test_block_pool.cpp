// test_block_pool.cpp: the caching device allocator's policy (cuda/allocator/block_pool.h) on the
// host, with fake device memory and fake streams and events: size classes, reuse per (stream,
// size class), statistics, the out-of-memory retry, and record_stream: a block that another
// stream used is handed out again only after an event recorded on that stream AT FREE TIME has
// completed; events are polled at allocation, never waited for, except by empty_cache (and so
// the out-of-memory retry) and the plain mode. The real allocator (the same BlockPool with CUDA
// calls) is checked on a GPU by tests/cuda/test_runtime.cpp.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/allocator/block_pool.h"

using rv::cuda::BlockPool;
using rv::cuda::EventHandle;
using rv::cuda::StreamHandle;

namespace {

// A fake stream: work is "queued" (a counter) and "completed" up to some point by the test.
struct FakeStream {
  int64_t queued = 0, completed = 0;
  void queue() { ++queued; }
  void finish() { completed = queued; }
};

struct FakeEvent {
  FakeStream* stream;
  int64_t ticket;  // done once stream->completed reaches it
};

// Device memory is a range of made-up addresses (never dereferenced) with a capacity, so that
// running out of memory can be staged.
class FakeCalls final : public rv::cuda::DeviceMemoryCalls {
 public:
  explicit FakeCalls(size_t capacity) : capacity_(capacity) {}
  ~FakeCalls() override {
    for (FakeEvent* e : all_events_) delete e;
  }

  void* malloc_bytes(size_t bytes) override {
    if (in_use_ + bytes > capacity_) return nullptr;
    in_use_ += bytes;
    ++mallocs;
    const uintptr_t a = next_;
    next_ += (bytes + 4095) / 4096 * 4096 + 4096;  // a gap, so that one past a block is in none
    sizes_[a] = bytes;
    return reinterpret_cast<void*>(a);
  }
  void free_bytes(void* p) override {
    auto it = sizes_.find(reinterpret_cast<uintptr_t>(p));
    REQUIRE(it != sizes_.end());
    in_use_ -= it->second;
    sizes_.erase(it);
    ++frees;
  }
  EventHandle record_event(StreamHandle stream) override {
    auto* s = static_cast<FakeStream*>(const_cast<void*>(stream));
    FakeEvent* e = nullptr;
    if (spare_.empty()) {
      e = new FakeEvent{};
      all_events_.push_back(e);
    } else {
      e = spare_.back();
      spare_.pop_back();
    }
    *e = FakeEvent{s, s->queued};
    ++recorded;
    ++outstanding;
    return e;
  }
  bool event_done(EventHandle h) override {
    ++polls;
    const auto* e = static_cast<FakeEvent*>(h);
    return e->stream->completed >= e->ticket;
  }
  void event_wait(EventHandle h) override {  // "blocks" until done: the stream gets that far
    ++waits;
    auto* e = static_cast<FakeEvent*>(h);
    e->stream->completed = std::max(e->stream->completed, e->ticket);
  }
  void release_event(EventHandle h) override {
    spare_.push_back(static_cast<FakeEvent*>(h));
    --outstanding;
  }
  std::string memory_report() override { return "fake device free " + std::to_string(capacity_ - in_use_); }

  size_t in_use() const { return in_use_; }
  int mallocs = 0, frees = 0, recorded = 0, outstanding = 0, polls = 0, waits = 0;

 private:
  size_t capacity_, in_use_ = 0;
  uintptr_t next_ = 0x100000;
  std::map<uintptr_t, size_t> sizes_;
  std::vector<FakeEvent*> all_events_, spare_;
};

constexpr size_t kMiB = size_t(1) << 20;

StreamHandle h(FakeStream& s) { return &s; }

}  // namespace

TEST_CASE("block pool: size classes are 512-byte steps below 1 MiB, then 8 per power of two") {
  CHECK(BlockPool::size_class(0) == 512);
  CHECK(BlockPool::size_class(1) == 512);
  CHECK(BlockPool::size_class(512) == 512);
  CHECK(BlockPool::size_class(513) == 1024);
  CHECK(BlockPool::size_class(kMiB - 1) == kMiB);
  CHECK(BlockPool::size_class(kMiB) == kMiB);
  CHECK(BlockPool::size_class(kMiB + 1) == kMiB + kMiB / 8);
  CHECK(BlockPool::size_class(3 * kMiB) == 3 * kMiB);
  CHECK(BlockPool::size_class(3 * kMiB + 1) == 3 * kMiB + kMiB / 4);
  for (size_t n : {size_t(7), size_t(100000), 5 * kMiB + 3, 1000 * kMiB + 1}) {
    const size_t c = BlockPool::size_class(n);
    CHECK(c >= n);
    CHECK(double(c - n) <= 0.125 * double(n) + 512);
  }
}

TEST_CASE("block pool: a freed block is reused on its own stream at once, never on another") {
  FakeCalls calls(64 * kMiB);
  BlockPool pool(calls, true, "fake:0");
  FakeStream a, b;
  void* p = pool.allocate(1000, h(a));
  pool.free(p);
  CHECK(pool.allocate(900, h(a)) == p);  // the same class (1024) on the same stream
  CHECK(pool.stats().cache_hits == 1);
  void* q = pool.allocate(1000, h(b));  // another stream: a new block, not p
  CHECK(q != p);
  void* r = pool.allocate(2000, h(a));  // another class: a new block
  CHECK(r != p);
  CHECK(calls.mallocs == 3);
  CHECK(calls.recorded == 0);  // no other stream was named: no event anywhere
  const rv::backend::MemoryStats st = pool.stats();
  CHECK(st.allocations == 4);
  CHECK(st.allocated == 1024 + 1024 + 2048);
  CHECK(st.requested == 900 + 1000 + 2000);
  CHECK(st.reserved == 1024 + 1024 + 2048);
  CHECK(st.device_mallocs == 3);
  CHECK_THROWS_WITH_AS(pool.free(reinterpret_cast<void*>(uintptr_t(0x42))), doctest::Contains("did not hand out"),
                       std::logic_error);
}

TEST_CASE("block pool: record_stream holds a block back until the other stream's work is done") {
  FakeCalls calls(64 * kMiB);
  BlockPool pool(calls, true, "fake:0");
  FakeStream compute, comm;
  void* p = pool.allocate(4096, h(compute));
  comm.queue();  // e.g. a collective on the bucket
  pool.record_stream(p, h(comm));
  CHECK(calls.recorded == 0);  // the event is recorded at free, not here
  comm.queue();                // more work on comm after record_stream but before the free
  pool.free(p);
  CHECK(calls.recorded == 1);
  CHECK(pool.stats().waiting_for_streams == 4096);
  CHECK(pool.stats().allocated == 0);

  void* q = pool.allocate(4096, h(compute));  // comm still busy: not p
  CHECK(q != p);
  comm.completed = 1;  // only the work queued before record_stream: not enough (the event came later)
  void* r = pool.allocate(4096, h(compute));
  CHECK(r != p);
  CHECK(pool.stats().waiting_for_streams == 4096);
  comm.finish();
  void* s = pool.allocate(4096, h(compute));  // now it is free again, on its own stream's list
  CHECK(s == p);
  CHECK(pool.stats().waiting_for_streams == 0);
  CHECK(calls.waits == 0);        // polled, never waited for
  CHECK(calls.outstanding == 0);  // the event went back to the pool
  CHECK(calls.mallocs == 3);
}

TEST_CASE("block pool: every stream that used a block must finish; any address inside it names it") {
  FakeCalls calls(64 * kMiB);
  BlockPool pool(calls, true, "fake:0");
  FakeStream compute, s1, s2;
  char* p = static_cast<char*>(pool.allocate(3 * kMiB, h(compute)));
  s1.queue();
  s2.queue();
  pool.record_stream(p + 12345, h(s1));  // a view's data pointer
  pool.record_stream(p + 3 * kMiB - 1, h(s2));
  pool.record_stream(p, h(s1));       // twice the same stream: one event
  pool.record_stream(p, h(compute));  // its own stream: nothing to do
  CHECK_THROWS_WITH_AS(pool.record_stream(p + 3 * kMiB, h(s1)), doctest::Contains("inside no live block"),
                       std::logic_error);
  CHECK_THROWS_AS(pool.record_stream(reinterpret_cast<void*>(uintptr_t(16)), h(s1)), std::logic_error);
  pool.free(p);
  CHECK(calls.recorded == 2);
  s1.finish();
  CHECK(pool.allocate(3 * kMiB, h(compute)) != p);  // s2 still busy
  s2.finish();
  CHECK(pool.allocate(3 * kMiB, h(compute)) == p);
  CHECK(calls.outstanding == 0);
  // A block whose record_stream was forgotten after a reuse: the new owner starts clean.
  void* q = pool.allocate(3 * kMiB, h(compute));
  pool.free(q);
  CHECK(calls.recorded == 2);
}

TEST_CASE("block pool: waiting blocks become free independently, in the order their streams finish") {
  FakeCalls calls(64 * kMiB);
  BlockPool pool(calls, true, "fake:0");
  FakeStream compute, s1, s2;
  void* p1 = pool.allocate(1 * kMiB, h(compute));
  void* p2 = pool.allocate(1 * kMiB, h(compute));
  s1.queue();
  s2.queue();
  pool.record_stream(p1, h(s1));
  pool.record_stream(p2, h(s2));
  pool.free(p1);
  pool.free(p2);
  CHECK(pool.stats().waiting_for_streams == 2 * kMiB);
  s2.finish();
  CHECK(pool.allocate(kMiB, h(compute)) == p2);
  CHECK(pool.stats().waiting_for_streams == kMiB);
  void* other = pool.allocate(kMiB, h(compute));
  CHECK((other != p1 && other != p2));
  s1.finish();
  CHECK(pool.allocate(kMiB, h(compute)) == p1);
  CHECK(calls.outstanding == 0);
}

TEST_CASE("block pool: empty_cache waits for busy blocks and gives everything cached back") {
  FakeCalls calls(64 * kMiB);
  BlockPool pool(calls, true, "fake:0");
  FakeStream compute, comm;
  void* keep = pool.allocate(2 * kMiB, h(compute));
  void* a = pool.allocate(kMiB, h(compute));
  void* b = pool.allocate(kMiB, h(compute));
  comm.queue();
  pool.record_stream(b, h(comm));
  pool.free(a);
  pool.free(b);
  pool.empty_cache();
  CHECK(calls.waits == 1);
  CHECK(comm.completed == comm.queued);
  CHECK(calls.frees == 2);
  CHECK(calls.outstanding == 0);
  const rv::backend::MemoryStats st = pool.stats();
  CHECK(st.reserved == 2 * kMiB);  // only the live block
  CHECK(st.allocated == 2 * kMiB);
  CHECK(st.waiting_for_streams == 0);
  CHECK(calls.in_use() == 2 * kMiB);
  pool.free(keep);
}

TEST_CASE("block pool: out of memory empties the cache (waiting blocks too) and retries once") {
  FakeCalls calls(4 * kMiB);
  BlockPool pool(calls, true, "fake:0");
  FakeStream compute, other, comm;
  void* a = pool.allocate(2 * kMiB, h(other));  // cached on another stream's list
  void* b = pool.allocate(2 * kMiB, h(compute));
  comm.queue();
  pool.record_stream(b, h(comm));
  pool.free(a);
  pool.free(b);  // both cached, the device "full"
  void* c = pool.allocate(3 * kMiB, h(compute));  // fits only once both are given back
  CHECK(c != nullptr);
  CHECK(calls.frees == 2);
  CHECK(calls.waits == 1);
  CHECK(pool.stats().reserved == 3 * kMiB);
  CHECK(pool.stats().peak_reserved == 4 * kMiB);
  CHECK_THROWS_WITH_AS(pool.allocate(2 * kMiB, h(compute)),
                       doctest::Contains("fake:0: out of memory allocating 2097152 bytes (tensors hold 3 MiB, "
                                         "reserved 3 MiB, fake device free 1048576)"),
                       std::runtime_error);
  pool.free(c);
  pool.reset_peak();
  CHECK(pool.stats().peak_allocated == 0);
  CHECK(pool.stats().peak_reserved == 3 * kMiB);
}

TEST_CASE("block pool: the plain mode mallocs and frees every block, waiting for other streams first") {
  FakeCalls calls(64 * kMiB);
  BlockPool pool(calls, false, "fake:0");
  FakeStream compute, comm;
  void* p = pool.allocate(1000, h(compute));
  CHECK(pool.stats().allocated == 1000);  // no size class in plain mode
  void* z = pool.allocate(0, h(compute));
  CHECK(z != nullptr);
  CHECK(z != p);
  comm.queue();
  pool.record_stream(p, h(comm));
  pool.free(p);
  CHECK(calls.waits == 1);
  CHECK(comm.completed == 1);
  CHECK(calls.frees == 1);
  pool.free(z);
  pool.free(nullptr);
  CHECK(calls.frees == 2);
  CHECK(pool.stats().reserved == 0);
  CHECK(pool.stats().cache_hits == 0);
  CHECK_FALSE(pool.stats().caching);
  CHECK(calls.outstanding == 0);
}
