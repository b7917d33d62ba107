// mask.cpp: masked_fill forward (a strided select between x and a constant) and backward
// (the same op on the gradient, filling zeros). On a device both are the backend's where kernel.
#include "engine/ops/mask.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/loops.h"

namespace rv {

namespace {

// The host loop: out = mask ? value : xd, mask already checked to broadcast to xd.
Tensor masked_fill_cpu(const Tensor& xd, const Tensor& mask, double value) {
  Tensor out = empty(xd.shape(), xd.dtype());
  cpu::NdLoop<3> loop(xd.shape(), {out.strides(), xd.strides(), cpu::broadcast_strides(mask, xd.shape())});
  const bool* mp = mask.data<bool>();
  cpu::dispatch_storage(xd.dtype(), "masked_fill", [&]<class T>() {
    T* op = static_cast<T*>(out.raw_data());
    const T* xp = static_cast<const T*>(xd.raw_data());
    const T fill = cpu::scalar_cast<T>(value);  // rounded once, like the stored values
    loop.run([&](const std::array<int64_t, 3>& base, const std::array<int64_t, 3>& inner, int64_t n) {
      T* orow = op + base[0];
      const T* xrow = xp + base[1];
      const bool* mrow = mp + base[2];
      if (inner[0] == 1 && inner[1] == 1 && inner[2] == 1) {  // dense rows: let the compiler vectorise
        for (int64_t i = 0; i < n; ++i) orow[i] = mrow[i] ? fill : xrow[i];
      } else if (inner[0] == 1 && inner[1] == 1 && inner[2] == 0) {  // one mask value for the row
        if (*mrow) std::fill(orow, orow + n, fill);
        else std::copy(xrow, xrow + n, orow);
      } else {
        for (int64_t i = 0; i < n; ++i) orow[i * inner[0]] = mrow[i * inner[2]] ? fill : xrow[i * inner[1]];
      }
    });
  });
  return out;
}

// On a device: the backend's select, where(mask, value, x), the value rounded to x's dtype on the
// host as scalar_cast rounds it (fill_) and held in a 0-d device tensor.
Tensor masked_fill_device(const Tensor& xd, const Tensor& mask, double value) {
  Tensor fill = empty({}, xd.dtype(), xd.device());
  fill.fill_(value);
  return backend::get(xd.device()).where(mask.detach(), fill, xd);
}

}  // namespace

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  if (mask.dtype() != DType::boolean)
    throw std::invalid_argument(std::string("masked_fill: mask must be bool, got ") + dtype_name(mask.dtype()));
  if (mask.dim() > x.dim() || cpu::broadcast_shapes(x.shape(), mask.shape(), "masked_fill") != x.shape())
    throw std::invalid_argument("masked_fill: mask shape " + shape_str(mask.shape()) + " does not broadcast to x shape " +
                                shape_str(x.shape()));
  if (mask.device() != x.device())
    throw std::invalid_argument("masked_fill: mask on " + mask.device().str() + ", x on " + x.device().str() +
                                "; move the mask with .to(device) first");
  Tensor xd = x.detach();
  Tensor out = xd.device().is_cpu() ? masked_fill_cpu(xd, mask, value) : masked_fill_device(xd, mask, value);
  if (auto rec = autograd::Recorder("masked_fill", {x})) {
    Tensor m = rec.save(mask);
    rec.finish(out, [m](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {masked_fill(g, m, 0.0)};
    });
  }
  return out;
}

}  // namespace rv
