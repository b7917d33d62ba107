// host_memory_backend.h: a stand-in "cuda" backend whose device memory is plain host memory, so
// unit tests can drive the engine's device paths (which op reaches which backend method, with
// which arguments, and that gradients stay on the device) on machines without a GPU.
//
// It provides one device, memory, the raw copies and an element-by-element strided copy; a test
// derives from it, overrides the op methods it checks (usually by running the CPU op on the
// same bytes), and installs it with backend::set_backend for the test's duration.
#pragma once
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/tensor.h"

namespace rv::test {

class HostMemoryBackend : public backend::DeviceBackend {
 public:
  DeviceType type() const override { return DeviceType::cuda; }
  int device_count() const override { return 1; }
  std::string unavailable_reason() const override { return ""; }
  std::string device_name(int) const override { return "fake"; }
  void synchronize(int) override {}
  void* allocate(size_t n, int) override { return std::malloc(n ? n : 1); }
  void deallocate(void* p, int) override { std::free(p); }
  void memset(void* d, int byte, size_t n, int) override { std::memset(d, byte, n); }
  void copy_from_host(void* d, const void* s, size_t n, int) override { std::memcpy(d, s, n); }
  void copy_to_host(void* d, const void* s, size_t n, int) override { std::memcpy(d, s, n); }
  void copy_on_device(void* d, const void* s, size_t n, int) override { std::memcpy(d, s, n); }
  backend::MemoryStats memory_stats(int) override { return {}; }
  void reset_peak_stats(int) override {}
  void empty_cache(int) override {}

  // Element by element in row-major order of dst; src read as broadcast to dst's shape.
  void copy_strided(const Tensor& dst, const Tensor& src) override {
    const Shape& shape = dst.shape();
    const size_t lead = shape.size() - src.shape().size(), item = dst.itemsize();
    std::vector<int64_t> idx(shape.size(), 0);
    for (int64_t n = 0; n < dst.numel(); ++n) {
      int64_t od = 0, os = 0;
      for (size_t d = 0; d < shape.size(); ++d) {
        od += idx[d] * dst.strides()[d];
        if (d >= lead && src.shape()[d - lead] != 1) os += idx[d] * src.strides()[d - lead];
      }
      std::memcpy(static_cast<char*>(dst.device_data()) + od * item,
                  static_cast<const char*>(src.device_data()) + os * item, item);
      for (size_t d = shape.size(); d-- > 0;) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
  }
};

// index_select of f64 device tensors as cuda/kernels/index.cu computes it (one "thread" per
// output element of x seen as (outer, S, inner)); index: contiguous int64 on the host. For fakes
// that stand in for the backend's index_select.
inline Tensor host_index_select_f64(const Tensor& x, int64_t dim, const Tensor& index) {
  const Tensor xc = x.contiguous();
  const int64_t K = index.numel(), S = x.size(dim);
  int64_t inner = 1;
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  Shape os = x.shape();
  os[size_t(dim)] = K;
  Tensor out = empty(os, x.dtype(), x.device());
  const double* xp = static_cast<const double*>(xc.device_data());
  double* op = static_cast<double*>(out.device_data());
  const int64_t* idx = index.data<int64_t>();
  for (int64_t e = 0; e < out.numel(); ++e) {
    const int64_t i = e % inner, t = e / inner, k = t % K, o = t / K;
    op[e] = xp[(o * S + idx[k]) * inner + i];
  }
  return out;
}

}  // namespace rv::test
