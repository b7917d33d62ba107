// backend_resample.cpp: the CUDA backend's interpolate (forward and backward), kernels in
// cuda/kernels/resample.cu. The op hands over its two tap tables (one per spatial dim, the
// weights already computed in the data's dtype); this file uploads them, with their inverses
// for the backward's gather (backend::invert_taps, built on the host), and launches.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/resample.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

using Taps = backend::DeviceBackend::ResampleTaps;

// A host table on the device as a 1-D tensor of `dtype` (at least one element, so an empty
// table still has memory; the kernels never read past the real length).
Tensor upload_table(const std::vector<int64_t>& v, Device dev) {
  return from_vector(v.empty() ? std::vector<int64_t>{0} : v, {int64_t(std::max<size_t>(v.size(), 1))}).to(dev);
}
Tensor upload_weights(const std::vector<double>& v, DType dtype, Device dev) {
  // double -> dtype on the host is exact: the op computed these weights in dtype.
  return from_vector(v.empty() ? std::vector<double>{0.0} : v, {int64_t(std::max<size_t>(v.size(), 1))}, dtype)
      .to(dev);
}

void check_taps(const Taps& t, const char* dim, const char* op) {
  const size_t cells = size_t(t.out * t.K);
  bool ok = t.in > 0 && t.out > 0 && t.K > 0 && t.n.size() == size_t(t.out) && t.idx.size() == cells &&
            t.w.size() == cells;
  for (size_t o = 0; ok && o < t.n.size(); ++o) ok = t.n[o] >= 1 && t.n[o] <= t.K;
  for (size_t e = 0; ok && e < cells; ++e) ok = t.idx[e] >= 0 && t.idx[e] < t.in;
  if (!ok)
    throw std::invalid_argument(std::string(op) + ": malformed " + dim + " tap table (in " + std::to_string(t.in) +
                                ", out " + std::to_string(t.out) + ", K " + std::to_string(t.K) + ")");
}

// Every device table of one call; `keep` holds the tensors alive until the launch is queued
// (their memory returns to the stream-ordered cache only after the work queued before).
ResampleTables tables_of(int64_t P, const Taps& th, const Taps& tw, DType dtype, Device dev, std::vector<Tensor>& keep) {
  std::vector<int64_t> hoff, hout, woff, wout;
  std::vector<double> hwt, wwt;
  backend::invert_taps(th, hoff, hout, hwt);
  backend::invert_taps(tw, woff, wout, wwt);
  keep = {upload_table(th.n, dev),          upload_table(th.idx, dev),         upload_table(tw.n, dev),
          upload_table(tw.idx, dev),        upload_weights(th.w, dtype, dev),  upload_weights(tw.w, dtype, dev),
          upload_table(hoff, dev),          upload_table(hout, dev),           upload_table(woff, dev),
          upload_table(wout, dev),          upload_weights(hwt, dtype, dev),   upload_weights(wwt, dtype, dev)};
  auto i64 = [&](int i) { return static_cast<const int64_t*>(keep[size_t(i)].device_data()); };
  auto raw = [&](int i) { return static_cast<const void*>(keep[size_t(i)].device_data()); };
  return ResampleTables{P,      th.in,  tw.in,  th.out, tw.out, th.K,   tw.K,   th.identity, tw.identity,
                        i64(0), i64(1), i64(2), i64(3), raw(4), raw(5), i64(6), i64(7),      i64(8),
                        i64(9), raw(10), raw(11)};
}

}  // namespace

Tensor CudaBackend::resample2d(const Tensor& x, const ResampleTaps& th, const ResampleTaps& tw) {
  require_float32_or_64(x, "interpolate");
  check_taps(th, "height", "interpolate");
  check_taps(tw, "width", "interpolate");
  if (x.dim() != 3 || x.size(1) != th.in || x.size(2) != tw.in)
    throw std::invalid_argument("interpolate: x has shape " + shape_str(x.shape()) + ", expected planes (P, " +
                                std::to_string(th.in) + ", " + std::to_string(tw.in) + ")");
  Tensor out = empty({x.size(0), th.out, tw.out}, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  std::vector<Tensor> keep;
  const ResampleTables t = tables_of(x.size(0), th, tw, x.dtype(), x.device(), keep);
  const Tensor xc = x.contiguous();
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  launch_resample_forward(x.dtype(), out.device_data(), xc.device_data(), t, compute_stream(dev));
  return out;
}

Tensor CudaBackend::resample2d_backward(const Tensor& g, const ResampleTaps& th, const ResampleTaps& tw) {
  require_float32_or_64(g, "interpolate backward");
  check_taps(th, "height", "interpolate backward");
  check_taps(tw, "width", "interpolate backward");
  if (g.dim() != 3 || g.size(1) != th.out || g.size(2) != tw.out)
    throw std::invalid_argument("interpolate backward: gradient has shape " + shape_str(g.shape()) +
                                ", expected planes (P, " + std::to_string(th.out) + ", " + std::to_string(tw.out) +
                                ")");
  Tensor dx = empty({g.size(0), th.in, tw.in}, g.dtype(), g.device());
  if (dx.numel() == 0) return dx;
  std::vector<Tensor> keep;
  const ResampleTables t = tables_of(g.size(0), th, tw, g.dtype(), g.device(), keep);
  const Tensor gc = g.contiguous();
  const int dev = g.device().index;
  DeviceGuard guard(dev);
  launch_resample_backward(g.dtype(), dx.device_data(), gc.device_data(), t, compute_stream(dev));
  return dx;
}

}  // namespace rv::cuda
