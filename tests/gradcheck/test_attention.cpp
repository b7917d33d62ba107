// attention: gradients of q, k, v and bias against f64 finite differences, for both
// implementations, with broadcast biases, masks, cross attention, and (for the fused kernels)
// more than one block of queries (48 per block) and more than one 16-key vector of padding.
#include "engine/ops/attention.h"
#include "tests/support/check.h"

using namespace rv;
using test::grad_input;

namespace {

Tensor small_mask(int64_t Nq, int64_t Nk) {
  std::vector<double> m(Nq * Nk, 1.0);
  for (int64_t i = 0; i < Nq; ++i) m[i * Nk + (i * 3) % Nk] = 0;  // one dropped key per query
  return from_vector(m, {Nq, Nk}, DType::boolean);
}

}  // namespace

TEST_CASE("gradcheck attention: q, k, v, bias (NH, Nq, Nk), mask, both implementations") {
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
    CAPTURE(int(impl));
    Tensor mask = small_mask(5, 7);
    std::vector<Tensor> in = {grad_input({2, 2, 5, 4}, 1), grad_input({2, 2, 7, 4}, 2), grad_input({2, 2, 7, 3}, 3),
                              grad_input({2, 5, 7}, 4)};
    RV_GRADCHECK([&](const std::vector<Tensor>& v) {
      return scaled_dot_product_attention(v[0], v[1], v[2], v[3], mask, std::nullopt, impl);
    }, in);
  }
}

TEST_CASE("gradcheck attention: a bias broadcast over heads and queries (B, 1, 1, Nk), explicit scale") {
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
    CAPTURE(int(impl));
    std::vector<Tensor> in = {grad_input({2, 3, 4, 2}, 5), grad_input({2, 3, 6, 2}, 6), grad_input({2, 3, 6, 2}, 7),
                              grad_input({2, 1, 1, 6}, 8)};
    RV_GRADCHECK([&](const std::vector<Tensor>& v) {
      return scaled_dot_product_attention(v[0], v[1], v[2], v[3], Tensor(), 0.7, impl);
    }, in);
  }
}

TEST_CASE("gradcheck attention: more than one block of queries and keys") {
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
    CAPTURE(int(impl));
    std::vector<Tensor> in = {grad_input({1, 1, 66, 2}, 9), grad_input({1, 1, 67, 2}, 10),
                              grad_input({1, 1, 67, 2}, 11), grad_input({67}, 12)};
    RV_GRADCHECK([&](const std::vector<Tensor>& v) {
      return scaled_dot_product_attention(v[0], v[1], v[2], v[3], Tensor(), std::nullopt, impl);
    }, in);
  }
}
