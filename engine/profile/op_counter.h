// op_counter.h: counting multiply-adds (MACs) of the ops a piece of code runs, as fvcore does
// for timm's "GMACs" column.
//
//   profile::OpCounter counter;               // counts on this thread while it lives
//   model->forward(images);
//   double gmacs = counter.macs() / 1e9;      // ViT-S/16 at 224: about 4.6 per image
//   counter.macs_of("linear");                // the share of one op
//
// The product ops report their MACs with one line in their forward (`profile::count_macs`):
//   matmul            batch * M * N * K
//   linear            rows * in * out
//   conv2d            B * O * Ho * Wo * (C / groups) * KH * KW
//   conv_transpose2d  B * C * H * W * (O / groups) * KH * KW   (per input pixel, as fvcore)
//   scaled_dot_product_attention  B * NH * Nq * Nk * (HD + HDv)  (q·kᵀ and p·v)
// Only products are counted (fvcore's convention): bias adds, norms, softmax, activations and
// the other elementwise ops are free. A counter counts every call made on its thread while it
// lives, including the matmuls inside a backward pass; to count a forward, keep the counter
// around the forward only. Counters nest: an inner one (a module's share) counts into every
// counter alive on the thread. With no counter alive, count_macs costs one thread-local load.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace rv::profile {

class OpCounter {
 public:
  OpCounter();
  ~OpCounter();
  OpCounter(const OpCounter&) = delete;
  OpCounter& operator=(const OpCounter&) = delete;

  int64_t macs() const { return total_; }
  int64_t macs_of(const std::string& op) const;  // 0 for an op that did not run
  int64_t calls_of(const std::string& op) const;
  // (op, MACs) in the order the ops first ran.
  std::vector<std::pair<std::string, int64_t>> by_op() const;
  void reset();

 private:
  friend void count_macs(const char* op, int64_t macs);
  struct Entry {
    const char* op;  // the op's string literal
    int64_t macs = 0, calls = 0;
  };
  void add(const char* op, int64_t macs);
  OpCounter* outer_;  // the counter alive on this thread when this one was made
  int64_t total_ = 0;
  std::vector<Entry> entries_;
};

// The hook the product ops call: adds `macs` under `op` (a string literal) to every counter
// alive on this thread. Does nothing when none is.
void count_macs(const char* op, int64_t macs);

}  // namespace rv::profile
