// conv_device.cpp: conv2d and conv_transpose2d on a device, as a few recorded ops around the
// device's GEMM, so that autograd composes the backward passes from pieces that each run there.
//
// conv2d, patch embedding (kernel == stride: the windows do not overlap):
//   patches (B*Ho*Wo, C*KH*KW) = x cropped to (Ho*KH, Wo*KW), viewed (B, C, Ho, KH, Wo, KW),
//                                permuted to (B, Ho, Wo, C, KH, KW) and copied contiguous
//   tokens  (B*Ho*Wo, O)       = linear(patches, weight viewed (O, C*KH*KW), bias)
// conv2d, any other window (padding, stride, dilation, groups G):
//   cols  (G, B*Ho*Wo, Kc)     = im2col(x), Kc = C/G*KH*KW   (a device kernel; recorded, its
//                                backward is col2im, a deterministic gather)
//   G == 1: y (B*Ho*Wo, O)     = linear(cols[0], weight viewed (O, Kc), bias)
//   G > 1:  y (G, B*Ho*Wo, O/G) = matmul(cols, weight viewed (G, O/G, Kc) transposed) (+ bias)
// conv_transpose2d (the adjoint of a conv2d Cout -> Cin with the same weight):
//   rows  (G, B*H*W, Cin/G)    = x permuted to (G, B, H, W, Cin/G)
//   cols  (G, B*H*W, Kc)       = matmul(rows, weight viewed (G, Cin/G, Kc)), Kc = Cout/G*KH*KW
//   y     (B, Cout, Ho, Wo)    = col2im(cols) (+ bias)   (recorded; its backward is im2col)
// The weight and bias gradients are the GEMM's (linear / matmul backward on the device); the
// input gradient is col2im (or im2col) of the GEMM's input gradient. Every step is
// deterministic, so the whole convolution is.
//
// Memory: cols holds KH*KW copies of the input (x 9 for UperNet's 3x3 convs), kept for the
// backward of the product. cuDNN (implicit GEMM) avoids it.
//
// The vendor library (backend conv_impl() == cudnn: ROPEVIT_CONV=cudnn), for both ops and every
// window, patch embedding included:
//   conv2d:           y  = conv2d_forward(x, w)            (+ bias, by add: its gradient a sum)
//                     dx = conv2d_input_grad(dy, w),  dw = conv2d_weight_grad(x, dy)
//   conv_transpose2d: it IS the input gradient of the adjoint conv2d (Cout -> Cin, same weight),
//                     so y  = conv2d_input_grad(x, w)   (x plays that conv's dy)
//                     dx = conv2d_forward(dy, w)        (the adjoint conv applied to dy)
//                     dw = conv2d_weight_grad(dy, x)    (that conv's input is dy, its dy is x)
// Mixed dtypes are promoted first (to(), recorded), as the CPU op does. A transpose whose
// output_padding reaches its stride (see adjoint_fits) stays on our path.
#include "engine/ops/conv_device.h"

#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/matmul.h"

namespace rv {

namespace {

using autograd::Grads;
using autograd::Needs;
using ConvWindow = backend::DeviceBackend::ConvWindow;

void check_conv_devices(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias) {
  const Device dev = x.device();
  if (!(w.device() == dev) || (bias.defined() && !(bias.device() == dev)))
    throw std::invalid_argument(std::string(op) + ": x is on " + dev.str() + " but the weight or bias is on " +
                                (w.device() == dev ? bias.device() : w.device()).str() + "; move it with .to(device)");
}

// cols = im2col(x) as a recorded op (backward: col2im of the incoming gradient).
Tensor im2col_op(const Tensor& x, const ConvWindow& win) {
  Tensor cols = backend::get(x.device()).im2col(x.detach(), win);
  if (auto rec = autograd::Recorder("conv2d (im2col)", {x})) {
    const Shape xs = x.shape();
    rec.finish(cols, [xs, win](const Tensor& g, const Needs&) -> Grads {
      return {backend::get(g.device()).col2im(g, xs, win)};
    });
  }
  return cols;
}

// y = col2im(cols) into x_shape as a recorded op (backward: im2col of the incoming gradient).
Tensor col2im_op(const Tensor& cols, const Shape& x_shape, const ConvWindow& win) {
  Tensor y = backend::get(cols.device()).col2im(cols.detach(), x_shape, win);
  if (auto rec = autograd::Recorder("conv_transpose2d (col2im)", {cols})) {
    rec.finish(y, [win](const Tensor& g, const Needs&) -> Grads { return {backend::get(g.device()).im2col(g, win)}; });
  }
  return y;
}

// The inputs in their promoted dtype (x, w, bias), for the vendor path.
DType vendor_conv_dtype(const Tensor& x, const Tensor& w, const Tensor& bias) {
  DType dt = promote_types(x.dtype(), w.dtype());
  return bias.defined() ? promote_types(dt, bias.dtype()) : dt;
}
Tensor vendor_conv_cast(const Tensor& t, DType dt) { return !t.defined() || t.dtype() == dt ? t : t.to(dt); }

// conv2d (no bias) by the backend's library, one recorded op over x and w.
Tensor vendor_conv2d_op(const Tensor& x, const Tensor& w, const ConvWindow& win) {
  Tensor y = backend::get(x.device()).conv2d_forward(x.detach(), w.detach(), win);
  if (auto rec = autograd::Recorder("conv2d", {x, w})) {
    const Tensor sx = rec.needs(1) ? rec.save(x) : Tensor();
    const Tensor sw = rec.needs(0) ? rec.save(w) : Tensor();
    const Shape xs = x.shape(), ws = w.shape();
    rec.finish(y, [sx, sw, xs, ws, win](const Tensor& g, const Needs& n) -> Grads {
      backend::DeviceBackend& b = backend::get(g.device());
      return {n[0] ? b.conv2d_input_grad(g, sw, xs, win) : Tensor(),
              n[1] ? b.conv2d_weight_grad(sx, g, ws, win) : Tensor()};
    });
  }
  return y;
}

// conv_transpose2d (no bias) = the input gradient of the adjoint conv2d, whose window is `win`
// and whose input shape is y_shape (B, Cout, Ho, Wo).
Tensor vendor_conv_transpose2d_op(const Tensor& x, const Tensor& w, const Shape& y_shape, const ConvWindow& win) {
  Tensor y = backend::get(x.device()).conv2d_input_grad(x.detach(), w.detach(), y_shape, win);
  if (auto rec = autograd::Recorder("conv_transpose2d", {x, w})) {
    const Tensor sx = rec.needs(1) ? rec.save(x) : Tensor();
    const Tensor sw = rec.needs(0) ? rec.save(w) : Tensor();
    const Shape ws = w.shape();
    rec.finish(y, [sx, sw, ws, win](const Tensor& g, const Needs& n) -> Grads {
      backend::DeviceBackend& b = backend::get(g.device());
      return {n[0] ? b.conv2d_forward(g, sw, win) : Tensor(), n[1] ? b.conv2d_weight_grad(g, sx, ws, win) : Tensor()};
    });
  }
  return y;
}

// Whether conv_transpose2d's output length `out` is one the adjoint conv2d maps back onto `in`
// (floor((out + 2 pad - dil (K - 1) - 1) / stride) + 1 == in). Not so when output_padding is at
// least the stride (allowed while it is below the dilation: stride 1, dilation 2, output_padding
// 1): a conv2d descriptor cannot say that, so such a transpose stays on our path.
bool adjoint_fits(int64_t in, int64_t out, int64_t K, int64_t stride, int64_t pad, int64_t dil) {
  return (out + 2 * pad - dil * (K - 1) - 1) / stride + 1 == in;
}

bool use_vendor_conv(const Tensor& x) {
  return backend::get(x.device()).conv_impl() == backend::DeviceBackend::ConvImpl::cudnn;
}

}  // namespace

Tensor conv2d_on_device(const Tensor& x, const Tensor& w, const Tensor& bias, bool patch_embed, const ConvWindow& win) {
  check_conv_devices("conv2d", x, w, bias);
  const int64_t B = x.size(0), C = x.size(1), O = w.size(0), KH = w.size(2), KW = w.size(3);
  const int64_t Ho = win.Ho, Wo = win.Wo, G = win.groups;
  if (use_vendor_conv(x)) {
    const DType dt = vendor_conv_dtype(x, w, bias);
    const Tensor y = vendor_conv2d_op(vendor_conv_cast(x, dt), vendor_conv_cast(w, dt), win);
    return bias.defined() ? add(y, vendor_conv_cast(bias, dt).reshape({1, O, 1, 1})) : y;
  }
  if (patch_embed) {
    const Tensor cropped = x.narrow(2, 0, Ho * KH).narrow(3, 0, Wo * KW);
    const Tensor patches =
        cropped.reshape({B, C, Ho, KH, Wo, KW}).permute({0, 2, 4, 1, 3, 5}).reshape({B * Ho * Wo, C * KH * KW});
    const Tensor tokens = linear(patches, w.reshape({O, C * KH * KW}), bias);
    return tokens.reshape({B, Ho, Wo, O}).permute({0, 3, 1, 2});
  }
  const int64_t Kc = C / G * KH * KW, Og = O / G;
  const Tensor cols = im2col_op(x, win);  // (G, B*Ho*Wo, Kc)
  if (G == 1) {
    const Tensor y = linear(cols.reshape({B * Ho * Wo, Kc}), w.reshape({O, Kc}), bias);  // (B*Ho*Wo, O)
    return y.reshape({B, Ho, Wo, O}).permute({0, 3, 1, 2});
  }
  const Tensor y = matmul(cols, w.reshape({G, Og, Kc}).transpose(1, 2));  // (G, B*Ho*Wo, O/G)
  Tensor out = y.reshape({G, B, Ho, Wo, Og}).permute({1, 0, 4, 2, 3}).reshape({B, O, Ho, Wo});
  if (bias.defined()) out = add(out, bias.reshape({1, O, 1, 1}));
  return out;
}

Tensor conv_transpose2d_on_device(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t Cout, int64_t Ho,
                                  int64_t Wo, const ConvWindow& win) {
  check_conv_devices("conv_transpose2d", x, w, bias);
  const int64_t B = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3), KH = w.size(2), KW = w.size(3);
  if (use_vendor_conv(x) && adjoint_fits(H, Ho, KH, win.stride_h, win.pad_h, win.dil_h) &&
      adjoint_fits(W, Wo, KW, win.stride_w, win.pad_w, win.dil_w)) {
    const DType dt = vendor_conv_dtype(x, w, bias);
    const Tensor y =
        vendor_conv_transpose2d_op(vendor_conv_cast(x, dt), vendor_conv_cast(w, dt), {B, Cout, Ho, Wo}, win);
    return bias.defined() ? add(y, vendor_conv_cast(bias, dt).reshape({1, Cout, 1, 1})) : y;
  }
  const int64_t G = win.groups, Cg = Cin / G, Kc = Cout / G * KH * KW;
  const Tensor rows = x.reshape({B, G, Cg, H, W}).permute({1, 0, 3, 4, 2}).reshape({G, B * H * W, Cg});
  const Tensor cols = matmul(rows, w.reshape({G, Cg, Kc}));  // (G, B*H*W, Kc)
  Tensor out = col2im_op(cols, {B, Cout, Ho, Wo}, win);
  if (bias.defined()) out = add(out, bias.reshape({1, Cout, 1, 1}));
  return out;
}

}  // namespace rv
