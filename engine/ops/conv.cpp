// conv.cpp: conv2d and conv_transpose2d, forward and backward, via im2col + GEMM.
//
// Three kernels, all in conv2d terms (see cpu::ConvGeom), do every computation:
//   conv_forward       y  = conv(x, w)            per image and group: w_g · im2col(x)
//   conv_input_grad    dx = conv's adjoint in x   per image and group: col2im(w_gᵀ · gy)
//   conv_weight_grad   dw = sum over images       per group: sum_b gy_b · im2col(x_b)ᵀ
// conv2d's forward is conv_forward and its backward the other two. A transposed convolution is
// the adjoint of a convolution, so its forward is conv_input_grad, its input gradient is
// conv_forward and its weight gradient conv_weight_grad with the roles of x and gy swapped.
//
// Threads: the (image, group) items of the first two kernels write disjoint outputs, so with
// enough of them each thread takes whole items (its own col buffer; GEMM then runs on that
// thread). With fewer items than threads they run in turn and GEMM and im2col thread inside.
// The weight gradient sums over images in a fixed order, so it parallelises over groups only.
#include "engine/ops/conv.h"

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/cpu/dense.h"
#include "engine/cpu/attention_tiles.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/gemm.h"
#include "engine/cpu/im2col.h"
#include "engine/cpu/patch_embed_kernel.h"
#include "engine/ops/conv_device.h"
#include "engine/ops/reduce.h"
#include "engine/profile/op_counter.h"

namespace rv {

namespace {

using cpu::ConvGeom;

int64_t ld(int64_t n) { return std::max<int64_t>(1, n); }

// Runs f(item, scratch) for item in [0, n), scratch being `scratch_elems` of T per thread.
template <class T, class F>
void for_each_item(int64_t n, int64_t scratch_elems, F&& f) {
  if (n >= cpu::num_threads() && cpu::num_threads() > 1) {
    cpu::parallel_for(n, 1, [&](int64_t i0, int64_t i1) {
      std::vector<T> scratch(static_cast<size_t>(scratch_elems));
      for (int64_t i = i0; i < i1; ++i) f(i, scratch.data());
    });
  } else {
    std::vector<T> scratch(static_cast<size_t>(scratch_elems));
    for (int64_t i = 0; i < n; ++i) f(i, scratch.data());
  }
}

// y (B, O, Ho, Wo) = conv(x (B, C, H, W), w (O, C/G, KH, KW)) [+ bias (O)]. All contiguous.
template <class T>
void conv_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* y) {
  const int64_t cg = g.cg(), og = g.og(), ckk = g.ckk(), hw = g.hw();
  const bool pw = g.pointwise();
  for_each_item<T>(g.B * g.G, pw ? 0 : ckk * hw, [&](int64_t item, T* col) {
    const int64_t b = item / g.G, gi = item % g.G;
    const T* xb = x + (b * g.C + gi * cg) * g.H * g.W;
    T* yb = y + (b * g.O + gi * og) * hw;
    if (!pw) cpu::im2col(g, xb, col);
    T beta = T(0);
    if (bias) {  // preload the bias, then accumulate the product onto it
      for (int64_t o = 0; o < og; ++o) std::fill(yb + o * hw, yb + (o + 1) * hw, bias[gi * og + o]);
      beta = T(1);
    }
    cpu::gemm(false, false, og, hw, ckk, T(1), w + gi * og * ckk, ld(ckk), pw ? xb : col, ld(hw), beta, yb, ld(hw));
  });
}

// dx (B, C, H, W) from gy (B, O, Ho, Wo) and w: col2im(w_gᵀ · gy_g) per image and group.
template <class T>
void conv_input_grad(const ConvGeom& g, const T* gy, const T* w, T* dx) {
  const int64_t cg = g.cg(), og = g.og(), ckk = g.ckk(), hw = g.hw();
  const bool pw = g.pointwise();
  for_each_item<T>(g.B * g.G, pw ? 0 : ckk * hw, [&](int64_t item, T* col) {
    const int64_t b = item / g.G, gi = item % g.G;
    const T* gyb = gy + (b * g.O + gi * og) * hw;
    T* dxb = dx + (b * g.C + gi * cg) * g.H * g.W;
    const T* wg = w + gi * og * ckk;
    if (pw) {  // col is the image: write the product straight into dx
      cpu::gemm(true, false, ckk, hw, og, T(1), wg, ld(ckk), gyb, ld(hw), T(0), dxb, ld(hw));
      return;
    }
    cpu::gemm(true, false, ckk, hw, og, T(1), wg, ld(ckk), gyb, ld(hw), T(0), col, ld(hw));
    std::fill(dxb, dxb + cg * g.H * g.W, T(0));
    cpu::col2im_add(g, col, dxb);
  });
}

// dw (O, C/G, KH, KW) = sum over images of gy_b,g · im2col(x_b,g)ᵀ.
template <class T>
void conv_weight_grad(const ConvGeom& g, const T* x, const T* gy, T* dw) {
  const int64_t cg = g.cg(), og = g.og(), ckk = g.ckk(), hw = g.hw();
  const bool pw = g.pointwise();
  T* dw_end = dw + g.O * ckk;
  std::fill(dw, dw_end, T(0));
  for_each_item<T>(g.G, pw ? 0 : ckk * hw, [&](int64_t gi, T* col) {
    for (int64_t b = 0; b < g.B; ++b) {
      const T* xb = x + (b * g.C + gi * cg) * g.H * g.W;
      const T* gyb = gy + (b * g.O + gi * og) * hw;
      if (!pw) cpu::im2col(g, xb, col);
      cpu::gemm(false, true, og, ckk, hw, T(1), gyb, ld(hw), pw ? xb : col, ld(hw), T(1), dw + gi * og * ckk,
                ld(ckk));
    }
  });
}

// ---- the ViT patch embedding: kernel == stride, no padding, dilation 1, groups 1 -------------
//
// Patches do not overlap, so the patch matrix P (B*Ho*Wo, C*KH*KW) (row (b, oh, ow) holds patch
// (oh, ow) of image b in weight order (c, i, j)) is a permutation of the image: every patch row
// is KH*C runs of KW contiguous pixels, copied as such. Then
//   tokens (B*Ho*Wo, O) = P · Wᵀ,   dW = gyᵀ · P,   dP = gy · W  (scattered back into dx).
// The forward keeps P for dW (it is the size of the image), so the backward gathers nothing
// again; dx needs only W. Each is a single GEMM over all rows, so results depend on OpenBLAS
// alone, not on how the engine splits work.

bool is_patch_embed(const ConvGeom& g) {
  return g.KH == g.SH && g.KW == g.SW && g.PH == 0 && g.PW == 0 && g.DH == 1 && g.DW == 1 && g.G == 1 &&
         g.KH * g.KW > 1;
}

// n runs of kw values from src (runs src_step apart) to dst (runs dst_step apart). KW > 0 fixes
// the run length at compile time, so a 16-float run is one vector load and store.
template <int64_t KW, class T>
void copy_runs(const T* src, int64_t src_step, T* dst, int64_t dst_step, int64_t n, int64_t kw) {
  const int64_t w = KW > 0 ? KW : kw;
  for (int64_t k = 0; k < n; ++k)
    for (int64_t j = 0; j < w; ++j) dst[k * dst_step + j] = src[k * src_step + j];
}

template <class T>
void copy_runs_any(const T* src, int64_t src_step, T* dst, int64_t dst_step, int64_t n, int64_t kw) {
  switch (kw) {
    case 16: return copy_runs<16>(src, src_step, dst, dst_step, n, kw);  // ViT
    case 4: return copy_runs<4>(src, src_step, dst, dst_step, n, kw);    // Swin
    case 8: return copy_runs<8>(src, src_step, dst, dst_step, n, kw);
    default: return copy_runs<0>(src, src_step, dst, dst_step, n, kw);
  }
}

// The Wo rows of P of group q = b * Ho + oh (patch row oh of image b) into dst.
template <class T>
void gather_group(const ConvGeom& g, const T* x, int64_t q, T* dst) {
  const int64_t b = q / g.Ho, oh = q % g.Ho, ckk = g.ckk();
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t i = 0; i < g.KH; ++i)
      copy_runs_any(x + ((b * g.C + c) * g.H + oh * g.KH + i) * g.W, g.KW, dst + (c * g.KH + i) * g.KW, ckk, g.Wo,
                    g.KW);
}

// The inverse of gather_group over all groups: dx from dP (pixels no patch covers are not written).
template <class T>
void scatter_patches(const ConvGeom& g, const T* dP, T* dx) {
  const int64_t ckk = g.ckk();
  cpu::parallel_for(g.B * g.Ho, 4, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t b = q / g.Ho, oh = q % g.Ho;
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t i = 0; i < g.KH; ++i)
          copy_runs_any(dP + (q * g.Wo) * ckk + (c * g.KH + i) * g.KW, ckk,
                        dx + ((b * g.C + c) * g.H + oh * g.KH + i) * g.W, g.KW, g.Wo, g.KW);
    }
  });
}

// Output pixels per block of the direct path: a multiple of every micro-kernel height (6, 8, 12).
constexpr int64_t kPixelBlock = 96;

// The direct forward needs O in whole SIMD vectors (Swin's 96, ViT's 384).
template <class T>
bool patch_direct(const ConvGeom& g) {
  return g.O % cpu::tiles::W<T> == 0;
}

// tokens y (B*Ho*Wo, O) = P · wᵀ [+ bias]. P (B*Ho*Wo, C*KH*KW) is written only when P is not
// null (dW will need it).
//
// With O in whole vectors (patch_direct) the product is computed directly from the image
// (cpu/patch_embed_kernel.h), in blocks of kPixelBlock output pixels: wᵀ is packed once into
// strip panels, the micro-kernel reads each pixel's patch in place, starts from the bias in
// registers and writes y once per K chunk. Before, a pass gathered P (19 MB for both models) and
// preloaded y with the bias (38 MB for Swin, a memmove call per row), then OpenBLAS ran the
// product and read y back: for Swin's K = 48 that GEMM ran far below peak, and the two extra
// passes cost as much as the product. Every output row is summed in a fixed order, so the
// result does not depend on the thread count (nor on whether P is kept).
//
// Otherwise one GEMM over all rows, P gathered first in the same parallel pass that preloads y
// with the bias (one pass, one team of threads).
template <class T>
void patch_forward(const ConvGeom& g, const T* x, const T* w, const T* bias, T* P, T* y) {
  const int64_t groups = g.B * g.Ho, rows = groups * g.Wo, ckk = g.ckk(), O = g.O, nci = g.C * g.KH;
  if (patch_direct<T>(g)) {
    if (P)  // for dW
      cpu::parallel_for(groups, 4, [&](int64_t q0, int64_t q1) {
        for (int64_t q = q0; q < q1; ++q) gather_group(g, x, q, P + q * g.Wo * ckk);
      });
    cpu::tiles::Buffer<T> wp;
    cpu::patch::pack_weight(w, O, ckk, wp);
    std::vector<int64_t> ci_off(static_cast<size_t>(nci));  // image row (c, i): offset from row (0, 0)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t i = 0; i < g.KH; ++i) ci_off[c * g.KH + i] = (c * g.H + i) * g.W;
    const int64_t blocks = (rows + kPixelBlock - 1) / kPixelBlock;
    cpu::parallel_for(blocks, 1, [&](int64_t k0, int64_t k1) {
      std::vector<const T*> px(static_cast<size_t>(kPixelBlock));
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t p0 = k * kPixelBlock, n = std::min(kPixelBlock, rows - p0);
        for (int64_t r = 0; r < n; ++r) {  // pixel p = (b, oh, ow): its patch's first value
          const int64_t p = p0 + r, ow = p % g.Wo, q = p / g.Wo, oh = q % g.Ho, b = q / g.Ho;
          px[r] = x + (b * g.C * g.H + oh * g.KH) * g.W + ow * g.KW;
        }
        cpu::patch::patch_pixels(n, O, px.data(), ci_off.data(), nci, g.KW, wp.get(ckk * O), bias, y + p0 * O);
      }
    });
    return;
  }
  cpu::parallel_for(groups, 4, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      gather_group(g, x, q, P + q * g.Wo * ckk);
      if (bias)  // preload the bias, then accumulate the product onto it
        for (int64_t r = q * g.Wo; r < (q + 1) * g.Wo; ++r) std::copy(bias, bias + O, y + r * O);
    }
  });
  cpu::gemm(false, true, rows, O, ckk, T(1), P, ld(ckk), w, ld(ckk), bias ? T(1) : T(0), y, ld(O));
}

// dx (B, C, H, W) and / or dw (O, C, KH, KW) (either may be null; dw needs the forward's P, dx
// needs w) from the output gradient, given channels-last as gy_rows (B*Ho*Wo, O), or else as
// gy_nchw (B, O, Ho, Wo); both contiguous.
//
// An NCHW gradient is first laid out as Gᵀ (O, B*Ho*Wo): each image's (O, Ho*Wo) slab is already
// O runs of Ho*Wo contiguous values, so this is a copy of whole runs (the transpose into rows
// (B*Ho*Wo, O) it replaces moved one value at a time), and the products take Gᵀ as it is:
// dW = Gᵀ · P (an NN product), dP = (Gᵀ)ᵀ · w. The same pass sums the bias gradient db (when
// not null; NCHW only) from the runs it copies: row o of Gt is one thread's, summed in a fixed
// order (16 lanes per run, runs added in image order in double), so db does not depend on the
// thread count, and the gradient is read once instead of twice.
template <class T>
void patch_backward(const ConvGeom& g, const T* P, const T* w, const T* gy_rows, const T* gy_nchw, T* dx, T* dw,
                    T* db) {
  const int64_t groups = g.B * g.Ho, rows = groups * g.Wo, ckk = g.ckk(), O = g.O, hw = g.hw();
  std::unique_ptr<T[]> Gt;  // (uninitialised: every value is written before it is read)
  if (!gy_rows) {
    Gt.reset(new T[static_cast<size_t>(rows * O)]);
    cpu::parallel_for(O, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, rows)), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        double total = 0;
        for (int64_t b = 0; b < g.B; ++b) {
          const T* src = gy_nchw + (b * O + o) * hw;
          T* dst = Gt.get() + o * rows + b * hw;
          T lanes[16] = {};
          int64_t i = 0;
          for (; i + 16 <= hw; i += 16)
            for (int64_t l = 0; l < 16; ++l) {
              dst[i + l] = src[i + l];
              lanes[l] += src[i + l];
            }
          for (int64_t l = 0; i < hw; ++i, ++l) {
            dst[i] = src[i];
            lanes[l] += src[i];
          }
          T run = 0;
          for (int64_t l = 0; l < 16; ++l) run += lanes[l];
          total += double(run);
        }
        if (db) db[o] = T(total);
      }
    });
  }
  // G (rows, O) is gy_rows (ld O) or the transpose of Gt (ld rows)
  const bool tr = gy_rows != nullptr;
  const T* G = tr ? gy_rows : Gt.get();
  const int64_t ldg = tr ? O : rows;
  if (dw) cpu::gemm(tr, false, O, ckk, rows, T(1), G, ld(ldg), P, ld(ckk), T(0), dw, ld(ckk));
  if (dx) {
    if (g.Ho * g.KH != g.H || g.Wo * g.KW != g.W)  // border pixels no patch covers get 0
      std::fill(dx, dx + g.B * g.C * g.H * g.W, T(0));
    std::unique_ptr<T[]> dP(new T[static_cast<size_t>(rows * ckk)]);
    cpu::gemm(!tr, false, rows, ckk, O, T(1), G, ld(ldg), w, ld(ckk), T(0), dP.get(), ld(ckk));
    scatter_patches(g, dP.get(), dx);
  }
}

// ---- argument checks and geometry --------------------------------------------------------------

void check_pair(const char* op, const char* name, Pair p, int64_t min) {
  if (p[0] < min || p[1] < min)
    throw std::invalid_argument(std::string(op) + ": " + name + " must be >= " + std::to_string(min) + ", got (" +
                                std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")");
}

DType conv_dtype(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias) {
  DType dt = promote_types(x.dtype(), w.dtype());
  if (bias.defined()) dt = promote_types(dt, bias.dtype());
  if (!is_floating(x.dtype()) || !is_floating(w.dtype()) || (bias.defined() && !is_floating(bias.dtype())))
    throw std::invalid_argument(std::string(op) + ": expected float tensors, got x " + dtype_name(x.dtype()) +
                                " and weight " + dtype_name(w.dtype()));
  return dt;
}

// Checks ranks, groups and the bias length (out_channels); the channel fit is checked by the op.
void check_shapes(const char* op, const Tensor& x, const Tensor& w, const Tensor& bias, int64_t groups,
                  int64_t out_channels) {
  if (x.dim() != 4) throw std::invalid_argument(std::string(op) + ": x must be 4-D (B, C, H, W), got " + shape_str(x.shape()));
  if (w.dim() != 4)
    throw std::invalid_argument(std::string(op) + ": weight must be 4-D, got " + shape_str(w.shape()));
  if (groups < 1) throw std::invalid_argument(std::string(op) + ": groups must be >= 1, got " + std::to_string(groups));
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != out_channels))
    throw std::invalid_argument(std::string(op) + ": bias must have shape [" + std::to_string(out_channels) +
                                "], got " + shape_str(bias.shape()));
}

using cpu::dense;

Tensor finish_dtype(const Tensor& t, DType dt) {
  autograd::NoGradGuard ng;
  return t.dtype() == dt ? t : t.to(dt);
}

}  // namespace

// ---- conv2d ------------------------------------------------------------------------------------

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, Pair stride, Pair padding, Pair dilation,
              int64_t groups) {
  if (autocast::is_enabled()) {  // autocast policy (runs in bf16/f16; engine/autocast.h)
    const Tensor x_ac = autocast::cast_lower(x), w_ac = autocast::cast_lower(w), bias_ac = autocast::cast_lower(bias);
    autocast::DisabledGuard inside;
    return conv2d(x_ac, w_ac, bias_ac, stride, padding, dilation, groups);
  }
  const char* op = "conv2d";
  check_shapes(op, x, w, bias, groups, w.dim() == 4 ? w.size(0) : 0);
  check_pair(op, "stride", stride, 1);
  check_pair(op, "padding", padding, 0);
  check_pair(op, "dilation", dilation, 1);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), KH = w.size(2), KW = w.size(3);
  if (C % groups != 0 || O % groups != 0 || w.size(1) * groups != C)
    throw std::invalid_argument("conv2d: x " + shape_str(x.shape()) + " and weight " + shape_str(w.shape()) +
                                " do not fit groups=" + std::to_string(groups) +
                                " (expected weight (O, C/groups, KH, KW) with C and O divisible by groups)");
  const int64_t eh = H + 2 * padding[0] - dilation[0] * (KH - 1) - 1;
  const int64_t ew = W + 2 * padding[1] - dilation[1] * (KW - 1) - 1;
  if (eh < 0 || ew < 0 || KH < 1 || KW < 1)
    throw std::invalid_argument("conv2d: kernel " + shape_str({KH, KW}) + " (dilation " +
                                shape_str({dilation[0], dilation[1]}) + ") does not fit input " +
                                shape_str({H, W}) + " with padding " + shape_str({padding[0], padding[1]}));
  const ConvGeom g{B, C, H, W, O, eh / stride[0] + 1, ew / stride[1] + 1, KH, KW, stride[0], stride[1],
                   padding[0], padding[1], dilation[0], dilation[1], groups};
  if (!x.device().is_cpu())
    return conv2d_on_device(x, w, bias, is_patch_embed(g),
                            {KH, KW, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], groups,
                             g.Ho, g.Wo});
  const DType dt = conv_dtype(op, x, w, bias), ct = cpu::compute_dtype(dt);
  const bool patch = is_patch_embed(g);

  Tensor xc = dense(x, ct), wc = dense(w, ct), bc = bias.defined() ? dense(bias, ct) : Tensor();
  Tensor out, patches;  // patches: P of the patch path, kept for dW
  cpu::dispatch_float(ct, op, [&]<class T>() {
    if (patch) {
      // tokens (B*Ho*Wo, O) = patches · weightᵀ [+ bias], written channels-last
      Tensor nhwc = empty({B, g.Ho, g.Wo, O}, ct);
      // P is kept only for dW (recorded when grad mode is on and w requires grad, as the
      // Recorder below decides); the direct path needs it for nothing else.
      const bool keep_p = !patch_direct<T>(g) || (autograd::grad_enabled() && w.requires_grad());
      if (keep_p) patches = empty({B * g.Ho * g.Wo, g.ckk()}, ct);
      patch_forward<T>(g, xc.data<T>(), wc.data<T>(), bc.defined() ? bc.data<T>() : nullptr,
                       keep_p ? patches.data<T>() : nullptr, nhwc.data<T>());
      autograd::NoGradGuard ng;
      out = nhwc.permute({0, 3, 1, 2});  // (B, O, Ho, Wo) view of the channels-last buffer
    } else {
      out = empty({B, O, g.Ho, g.Wo}, ct);
      conv_forward<T>(g, xc.data<T>(), wc.data<T>(), bc.defined() ? bc.data<T>() : nullptr, out.data<T>());
    }
  });
  out = finish_dtype(out, dt);
  profile::count_macs(op, out.numel() * w.size(1) * KH * KW);  // each output: C/groups * KH * KW products

  std::vector<Tensor> inputs{x, w};
  if (bias.defined()) inputs.push_back(bias);
  if (auto rec = autograd::Recorder(op, inputs)) {
    // dw needs x (the patch path: its patch matrix, which the forward made anyway), dx needs w
    Tensor sx = rec.needs(1) && !patch ? rec.save(x) : Tensor();
    Tensor sp = rec.needs(1) && patch ? patches : Tensor();
    Tensor sw = rec.needs(0) ? rec.save(w) : Tensor();
    const Shape xs = x.shape(), ws = w.shape();
    const bool has_bias = bias.defined();
    rec.finish(out, [=](const Tensor& grad, const autograd::Needs& n) -> autograd::Grads {
      autograd::Grads grads(has_bias ? 3 : 2);
      // The patch path reads an NCHW gradient (not channels-last in place) in a pass that also
      // sums db (patch_backward); otherwise db is a plain sum.
      const bool patch_nchw =
          patch && (n[0] || n[1]) && !(grad.dtype() == ct && grad.permute({0, 2, 3, 1}).is_contiguous());
      const bool db_in_pass = has_bias && n[2] && patch_nchw;
      if (has_bias && n[2] && !db_in_pass) grads[2] = sum(grad, {0, 2, 3});
      if (db_in_pass) grads[2] = empty({g.O}, ct);
      if (!n[0] && !n[1]) return grads;
      Tensor dx = n[0] ? empty(xs, ct) : Tensor(), dw = n[1] ? empty(ws, ct) : Tensor();
      Tensor wd = n[0] ? dense(sw, ct) : Tensor(), xd = n[1] && !patch ? dense(sx, ct) : Tensor();
      cpu::dispatch_float(ct, "conv2d backward", [&]<class T>() {
        if (patch) {
          // The forward's output is channels-last, so its gradient often is too (tokens (B, N, C)
          // viewed back as (B, C, Ho, Wo)): then it is read as (B*Ho*Wo, O) rows in place.
          Tensor gl = grad.permute({0, 2, 3, 1});
          const bool rows = gl.dtype() == ct && gl.is_contiguous();
          Tensor gd = rows ? gl : dense(grad, ct);
          patch_backward<T>(g, n[1] ? sp.data<T>() : nullptr, n[0] ? wd.data<T>() : nullptr,
                            rows ? gd.data<T>() : nullptr, rows ? nullptr : gd.data<T>(),
                            n[0] ? dx.data<T>() : nullptr, n[1] ? dw.data<T>() : nullptr,
                            db_in_pass ? grads[2].data<T>() : nullptr);
          return;
        }
        Tensor gd = dense(grad, ct);
        if (n[0]) conv_input_grad<T>(g, gd.data<T>(), wd.data<T>(), dx.data<T>());
        if (n[1]) conv_weight_grad<T>(g, xd.data<T>(), gd.data<T>(), dw.data<T>());
      });
      if (n[0]) grads[0] = dx;
      if (n[1]) grads[1] = dw;
      return grads;
    });
  }
  return out;
}

// ---- conv_transpose2d -------------------------------------------------------------------------

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, Pair stride, Pair padding,
                        Pair output_padding, Pair dilation, int64_t groups) {
  if (autocast::is_enabled()) {  // autocast policy (runs in bf16/f16; engine/autocast.h)
    const Tensor x_ac = autocast::cast_lower(x), w_ac = autocast::cast_lower(w), bias_ac = autocast::cast_lower(bias);
    autocast::DisabledGuard inside;
    return conv_transpose2d(x_ac, w_ac, bias_ac, stride, padding, output_padding, dilation, groups);
  }
  const char* op = "conv_transpose2d";
  check_shapes(op, x, w, bias, groups, w.dim() == 4 ? w.size(1) * groups : 0);
  check_pair(op, "stride", stride, 1);
  check_pair(op, "padding", padding, 0);
  check_pair(op, "output_padding", output_padding, 0);
  check_pair(op, "dilation", dilation, 1);
  for (int d = 0; d < 2; ++d)
    if (output_padding[d] >= std::max(stride[d], dilation[d]))
      throw std::invalid_argument("conv_transpose2d: output_padding must be smaller than stride or dilation, got " +
                                  shape_str({output_padding[0], output_padding[1]}) + " with stride " +
                                  shape_str({stride[0], stride[1]}) + " and dilation " +
                                  shape_str({dilation[0], dilation[1]}));
  const int64_t B = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t KH = w.size(2), KW = w.size(3), Cout = w.size(1) * groups;
  if (w.size(0) != Cin || Cin % groups != 0)
    throw std::invalid_argument("conv_transpose2d: x " + shape_str(x.shape()) + " and weight " +
                                shape_str(w.shape()) + " do not fit groups=" + std::to_string(groups) +
                                " (expected weight (C, O/groups, KH, KW) with C = x.size(1) divisible by groups)");
  const int64_t Ho = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (KH - 1) + output_padding[0] + 1;
  const int64_t Wo = (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (KW - 1) + output_padding[1] + 1;
  if (Ho < 1 || Wo < 1 || KH < 1 || KW < 1)
    throw std::invalid_argument("conv_transpose2d: output size " + shape_str({Ho, Wo}) + " for input " +
                                shape_str({H, W}) + " is too small");
  // The adjoint conv2d maps (B, Cout, Ho, Wo) -> (B, Cin, H, W) with this very weight.
  const ConvGeom g{B, Cout, Ho, Wo, Cin, H, W, KH, KW, stride[0], stride[1],
                   padding[0], padding[1], dilation[0], dilation[1], groups};
  if (!x.device().is_cpu())
    return conv_transpose2d_on_device(
        x, w, bias, Cout, Ho, Wo,
        {KH, KW, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], groups, H, W});
  const DType dt = conv_dtype(op, x, w, bias), ct = cpu::compute_dtype(dt);

  Tensor xc = dense(x, ct), wc = dense(w, ct);
  Tensor out = empty({B, Cout, Ho, Wo}, ct);
  cpu::dispatch_float(ct, op, [&]<class T>() {
    conv_input_grad<T>(g, xc.data<T>(), wc.data<T>(), out.data<T>());
    if (bias.defined()) {
      Tensor bc = dense(bias, ct);
      const T* bp = bc.data<T>();
      T* yp = out.data<T>();
      const int64_t plane = Ho * Wo;
      cpu::parallel_for(B * Cout, std::max<int64_t>(1, 32768 / plane), [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          const T bv = bp[p % Cout];
          for (int64_t i = 0; i < plane; ++i) yp[p * plane + i] += bv;
        }
      });
    }
  });
  out = finish_dtype(out, dt);
  profile::count_macs(op, x.numel() * w.size(1) * KH * KW);  // each input pixel: O/groups * KH * KW products

  std::vector<Tensor> inputs{x, w};
  if (bias.defined()) inputs.push_back(bias);
  if (auto rec = autograd::Recorder(op, inputs)) {
    Tensor sx = rec.needs(1) ? rec.save(x) : Tensor();
    Tensor sw = rec.needs(0) ? rec.save(w) : Tensor();
    const Shape xs = x.shape(), ws = w.shape();
    const bool has_bias = bias.defined();
    rec.finish(out, [=](const Tensor& grad, const autograd::Needs& n) -> autograd::Grads {
      autograd::Grads grads(has_bias ? 3 : 2);
      if (has_bias && n[2]) grads[2] = sum(grad, {0, 2, 3});
      if (!n[0] && !n[1]) return grads;
      Tensor gd = dense(grad, ct);
      cpu::dispatch_float(ct, "conv_transpose2d backward", [&]<class T>() {
        if (n[0]) {  // dx = conv2d(grad, w): the forward of the adjoint
          Tensor wd = dense(sw, ct);
          grads[0] = empty(xs, ct);
          conv_forward<T>(g, gd.data<T>(), wd.data<T>(), nullptr, grads[0].data<T>());
        }
        if (n[1]) {  // the adjoint's weight gradient, its input being grad and its output gradient x
          Tensor xd = dense(sx, ct);
          grads[1] = empty(ws, ct);
          conv_weight_grad<T>(g, gd.data<T>(), xd.data<T>(), grads[1].data<T>());
        }
      });
      return grads;
    });
  }
  return out;
}

}  // namespace rv
