// ms_deform_attn_module.cpp: MultiScaleDeformableAttention (mmcv, batch_first=True): projections,
// mmcv's initialisation, and the forward that turns reference points and offsets into sampling
// locations for the ms_deform_attn op.
#include "models/det/ms_deform_attn_module.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/mask.h"
#include "engine/ops/ms_deform_attn.h"
#include "engine/ops/softmax.h"

namespace rv::models::det {

namespace {

constexpr const char* kName = "MultiScaleDeformableAttention";

std::string str(int64_t v) { return std::to_string(v); }

}  // namespace

MultiScaleDeformableAttention::MultiScaleDeformableAttention(const MSDeformAttnOptions& options, Generator& gen)
    : opt_(options) {
  const int64_t C = opt_.embed_dims, NH = opt_.num_heads, L = opt_.num_levels, P = opt_.num_points;
  if (C <= 0 || NH <= 0 || L <= 0 || P <= 0)
    throw std::invalid_argument(std::string(kName) + ": expected embed_dims, num_heads, num_levels and num_points > 0, got " +
                                str(C) + ", " + str(NH) + ", " + str(L) + ", " + str(P));
  value_dims_ = int64_t(double(C) * opt_.value_proj_ratio);  // Python's int(): truncation
  if (value_dims_ <= 0 || value_dims_ % NH != 0)
    throw std::invalid_argument(std::string(kName) + ": expected the value width int(embed_dims * value_proj_ratio) = " +
                                str(value_dims_) + " to be a positive multiple of num_heads " + str(NH));
  // mmcv's registration order (the dropout holds no parameters).
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(opt_.dropout));
  sampling_offsets = register_module("sampling_offsets", std::make_shared<nn::Linear>(C, NH * L * P * 2, gen));
  attention_weights = register_module("attention_weights", std::make_shared<nn::Linear>(C, NH * L * P, gen));
  value_proj = register_module("value_proj", std::make_shared<nn::Linear>(C, value_dims_, gen));
  output_proj = register_module("output_proj", std::make_shared<nn::Linear>(value_dims_, C, gen));
  init_weights(gen);
}

void MultiScaleDeformableAttention::init_weights(Generator& gen) {
  const int64_t NH = opt_.num_heads, L = opt_.num_levels, P = opt_.num_points;
  nn::init::zeros_(sampling_offsets->weight);
  // The bias: a direction per head, in f32 as mmcv computes it (thetas = arange(NH) * (2 pi / NH) in
  // f32, cos and sin, divided by the larger magnitude), point p scaled by p + 1, on every level.
  std::vector<double> grid(size_t(NH * L * P * 2));
  const float step = float(2.0 * M_PI / double(NH));
  for (int64_t h = 0; h < NH; ++h) {
    const float theta = float(h) * step;
    const float cx = std::cos(theta), cy = std::sin(theta);
    const float m = std::max(std::fabs(cx), std::fabs(cy));
    const float dx = cx / m, dy = cy / m;
    for (int64_t l = 0; l < L; ++l)
      for (int64_t p = 0; p < P; ++p) {
        const size_t i = size_t(((h * L + l) * P + p) * 2);
        grid[i] = double(dx * float(p + 1));
        grid[i + 1] = double(dy * float(p + 1));
      }
  }
  if (!nn::init::init_skipped()) {
    autograd::NoGradGuard no_grad;
    sampling_offsets->bias.copy_(from_vector(grid, {NH * L * P * 2}, DType::f64));
  }
  nn::init::zeros_(attention_weights->weight);
  nn::init::zeros_(attention_weights->bias);
  nn::init::xavier_uniform_(value_proj->weight, gen);
  nn::init::zeros_(value_proj->bias);
  nn::init::xavier_uniform_(output_proj->weight, gen);
  nn::init::zeros_(output_proj->bias);
}

Tensor MultiScaleDeformableAttention::forward(const Tensor& query, const Tensor& value_in, const Tensor& reference_points,
                                              const Tensor& spatial_shapes, const Tensor& level_start_index,
                                              const MSDeformAttnExtras& extras) {
  const int64_t C = opt_.embed_dims, NH = opt_.num_heads, L = opt_.num_levels, P = opt_.num_points;
  if (query.dim() != 3 || query.size(2) != C)
    throw std::invalid_argument(std::string(kName) + ": expected `query` of shape (B, Q, " + str(C) + "), got " +
                                shape_str(query.shape()));
  const int64_t B = query.size(0), Q = query.size(1);
  const Tensor value = value_in.defined() ? value_in : query;  // mmcv: value = query when absent
  if (value.dim() != 3 || value.size(0) != B || value.size(2) != C)
    throw std::invalid_argument(std::string(kName) + ": expected `value` of shape (" + str(B) + ", S, " + str(C) +
                                "), got " + shape_str(value.shape()));
  const int64_t S = value.size(1);
  const int64_t rdim = reference_points.dim() == 4 ? reference_points.size(3) : 0;
  if (reference_points.dim() != 4 || reference_points.size(0) != B || reference_points.size(1) != Q ||
      reference_points.size(2) != L || (rdim != 2 && rdim != 4))
    throw std::invalid_argument(std::string(kName) + ": expected `reference_points` of shape (" + str(B) + ", " +
                                str(Q) + ", " + str(L) + ", 2 or 4), got " + shape_str(reference_points.shape()));
  if (spatial_shapes.dim() != 2 || spatial_shapes.size(0) != L || spatial_shapes.size(1) != 2 ||
      spatial_shapes.dtype() != DType::i64)
    throw std::invalid_argument(std::string(kName) + ": expected `spatial_shapes` (" + str(L) + ", 2) int64, got " +
                                shape_str(spatial_shapes.shape()) + " " + dtype_name(spatial_shapes.dtype()));

  const Tensor identity = extras.identity.defined() ? extras.identity : query;
  const Tensor q = extras.query_pos.defined() ? add(query, extras.query_pos) : query;

  Tensor v = value_proj->forward(value);  // (B, S, Cv)
  if (extras.key_padding_mask.defined()) {
    const Tensor& m = extras.key_padding_mask;
    if (m.shape() != Shape{B, S} || (m.dtype() != DType::boolean && m.dtype() != DType::u8))
      throw std::invalid_argument(std::string(kName) + ": expected `key_padding_mask` of shape (" + str(B) + ", " +
                                  str(S) + ") bool, got " + shape_str(m.shape()) + " " + dtype_name(m.dtype()));
    const Tensor mb = m.dtype() == DType::boolean ? m : m.to(DType::boolean);
    v = masked_fill(v, mb.unsqueeze(-1), 0.0);
  }
  v = v.reshape({B, S, NH, value_dims_ / NH});

  const Tensor offsets = sampling_offsets->forward(q).reshape({B, Q, NH, L, P, 2});
  Tensor weights = softmax(attention_weights->forward(q).reshape({B, Q, NH, L * P}), -1).reshape({B, Q, NH, L, P});

  Tensor locations;
  if (rdim == 2) {
    // Offsets are in pixels of each level: divide by (W_l, H_l).
    std::vector<int64_t> hw = spatial_shapes.device().is_cpu() ? spatial_shapes.contiguous().to_vector<int64_t>()
                                                              : spatial_shapes.cpu().to_vector<int64_t>();
    std::vector<double> norm(size_t(2 * L));
    for (int64_t l = 0; l < L; ++l) norm[size_t(2 * l)] = double(hw[size_t(2 * l + 1)]), norm[size_t(2 * l + 1)] = double(hw[size_t(2 * l)]);
    const Tensor normalizer = from_vector(norm, {1, 1, 1, L, 1, 2}, offsets.dtype()).to(offsets.device());
    locations = add(reference_points.reshape({B, Q, 1, L, 1, 2}), div(offsets, normalizer));
  } else {
    // Boxes (cx, cy, w, h): offsets in units of the half-size over P, in mmcv's order of operations.
    const Tensor centre = reference_points.narrow(3, 0, 2).reshape({B, Q, 1, L, 1, 2});
    const Tensor size = reference_points.narrow(3, 2, 2).reshape({B, Q, 1, L, 1, 2});
    const Tensor num_points = full({1}, double(P), offsets.dtype(), offsets.device());
    locations = add(centre, mul(mul(div(offsets, num_points), size), 0.5));
  }
  Tensor out = ms_deform_attn(v, spatial_shapes, level_start_index, locations, weights);  // (B, Q, Cv)
  return add(dropout->forward(output_proj->forward(out)), identity);
}

}  // namespace rv::models::det
