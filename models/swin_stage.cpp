// swin_stage.cpp: PatchMerging and the Swin stage.
#include "models/swin_stage.h"

#include <stdexcept>
#include <string>

#include "engine/ops/pad.h"

namespace rv::models {

PatchMerging::PatchMerging(int64_t dim, double norm_eps, Generator& gen) {
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(4 * dim, norm_eps));
  reduction = register_module("reduction", std::make_shared<nn::Linear>(4 * dim, 2 * dim, gen, /*bias=*/false));
}

Tensor PatchMerging::forward(const Tensor& x) {
  if (x.dim() != 4)
    throw std::invalid_argument("PatchMerging: expected x (B, H, W, C), got " + shape_str(x.shape()));
  const int64_t B = x.size(0), C = x.size(3);
  Tensor h = x;
  if (x.size(1) % 2 != 0 || x.size(2) % 2 != 0) h = pad(h, {0, 0, 0, x.size(2) % 2, 0, x.size(1) % 2});
  const int64_t H2 = h.size(1) / 2, W2 = h.size(2) / 2;
  // (B, H/2, 2, W/2, 2, C) -> (B, H/2, W/2, dx, dy, C): channel block dx*2 + dy holds
  // x[2i+dy, 2j+dx], i.e. the order x0, x1, x2, x3 above.
  h = h.reshape({B, H2, 2, W2, 2, C}).permute({0, 1, 3, 4, 2, 5}).reshape({B, H2, W2, 4 * C});
  return reduction->forward(norm->forward(h));
}

SwinStage::SwinStage(int64_t in_dim, int64_t out_dim, bool has_downsample, int64_t res_h, int64_t res_w,
                     int64_t depth, int64_t num_heads, int64_t ws, const std::vector<double>& drop_paths,
                     const ModelConfig& cfg, Generator& gen)
    : res_h_(res_h), res_w_(res_w) {
  if (int64_t(drop_paths.size()) != depth)
    throw std::invalid_argument("SwinStage: expected one drop-path rate per block (" + std::to_string(depth) +
                                "), got " + std::to_string(drop_paths.size()));
  if (has_downsample) {
    if (out_dim != 2 * in_dim)
      throw std::invalid_argument("SwinStage: a merging stage doubles the channels, got " + std::to_string(in_dim) +
                                  " -> " + std::to_string(out_dim));
    downsample = register_module("downsample", std::make_shared<PatchMerging>(in_dim, cfg.norm_eps, gen));
  } else if (out_dim != in_dim) {
    throw std::invalid_argument("SwinStage: without downsample the channels stay, got " + std::to_string(in_dim) +
                                " -> " + std::to_string(out_dim));
  }
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  for (int64_t b = 0; b < depth; ++b)
    blocks->push_back(std::make_shared<SwinBlock>(out_dim, num_heads, res_h, res_w, ws, /*shifted=*/b % 2 == 1,
                                                  drop_paths[size_t(b)], cfg, gen));
}

Tensor SwinStage::forward(const Tensor& x) {
  Tensor h = downsample ? downsample->forward(x) : x;
  for (size_t b = 0; b < blocks->size(); ++b) h = blocks->get<SwinBlock>(b)->forward(h);
  return h;
}

}  // namespace rv::models
