// checkpoint_convert.h: turning a checkpoint's state dict (timm names, or the official RoPE-ViT /
// Swin names) into the state dict a given model expects: the one place where keys are renamed,
// regenerated buffers dropped and position tables resized. `ropevit convert` and
// models::load_pretrained (models/pretrained.h) both call convert_state_dict, so a file converted
// once and a checkpoint loaded directly end up with the same tensors.
//
//   source StateDict --map_checkpoint_keys--> target names --resize_position_tables--> target shapes
//                    --check_against_model--> every key of the model present with its shape
//
// 1. Names (map_checkpoint_keys), each rule applied only when it moves a key toward the model:
//    - a leading "module." (DistributedDataParallel) is stripped;
//    - buffers the model regenerates are dropped: freqs_t_x, freqs_t_y (NV RoPE-ViT positions),
//      relative_position_index, relative_coords_table, attn_mask, rope_t_x, rope_t_y (Swin);
//    - NV ViT `freqs` (2, L, C/2) -> `rope.freqs` (2, L, NH, HD/2) (a reshape: C/2 = NH * HD/2,
//      heads outermost, as timm's checkpoint_filter_fn);
//    - LayerScale: `blocks.i.gamma_1/2` (NV, timm's Eva) <-> `blocks.i.ls1/ls2.gamma` (timm's
//      VisionTransformer, our deit3_*), whichever the model has;
//    - Swin in the MS / NV layout (a `layers.0.downsample` key, which timm never has): every
//      `layers.{s}.downsample` -> `layers.{s+1}.downsample`, and `head.` -> `head.fc.`.
//    timm names pass through unchanged.
// 2. Shapes (resize_position_tables):
//    - `pos_embed` (1, P + G*G, C) whose grid differs from the model's Gh x Gw (P = 1 with
//      ModelConfig::ape_on_cls): resample_abs_pos_embed (bicubic; antialias from
//      ModelConfig::ape_antialias; the CLS row kept as is). The source grid is square unless
//      ConvertOptions::source_grid says otherwise.
//    - `*.relative_position_bias_table` ((2ws-1)^2, NH) whose window differs from the block's:
//      resize_rel_pos_bias_table to the block's (2wh-1)(2ww-1) rows.
//    Floating tensors of another dtype (bf16 / f16 / f64 checkpoints) become the model's dtype.
// 3. Check (check_against_model): keys and shapes against the model's state dict. ALL problems
//    (missing keys, unexpected keys, shape mismatches with both shapes) go into one
//    std::runtime_error naming the model.
//
// Each rule that fired adds a line to `notes`, e.g. "dropped 2 regenerated buffers: freqs_t_x,
// freqs_t_y" or "resized pos_embed 14x14 -> 20x20 (bicubic, antialias off)".
#pragma once
#include <string>
#include <vector>

#include "engine/nn/state_dict.h"
#include "models/ape.h"
#include "models/model.h"

namespace rv::models {

struct ConvertOptions {
  // Fine-tuning on another label set (timm's pretrained loading with a new num_classes): a head
  // tensor (`head.*`, `head.fc.*`) whose shape differs from the model's, or that the model lacks
  // (num_classes = 0), is left out of the result, with a note, instead of being an error. The
  // model's head then keeps its own initialisation (load_pretrained fills it in).
  bool skip_mismatched_head = false;
  // The patch grid the checkpoint's pos_embed was made for, when it is not square (a file that
  // `ropevit convert` wrote for a non-square size says so in its metadata: see
  // source_grid_from_metadata in models/pretrained.h). {0, 0}: infer a square grid from the rows.
  Grid source_grid;
};

struct ConvertResult {
  nn::StateDict state;             // the model's keys, in the model's order
  std::vector<std::string> notes;  // one line per rule applied
  std::vector<std::string> skipped_head;  // head keys left out (skip_mismatched_head)
};

// All three steps. `model` is only read: its config, its state dict's names and shapes, and (Swin)
// each block's window; build it under nn::init::SkipInitGuard when only the names matter.
ConvertResult convert_state_dict(const nn::StateDict& source, const Model& model, const ConvertOptions& options = {});

// The steps one by one (convert_state_dict runs them in this order), for tests and tools.
nn::StateDict map_checkpoint_keys(const nn::StateDict& source, const Model& model, std::vector<std::string>& notes);
nn::StateDict resize_position_tables(const nn::StateDict& mapped, const Model& model, const ConvertOptions& options,
                                     std::vector<std::string>& notes);
// Throws listing every problem; returns the state in the model's key order.
ConvertResult check_against_model(const nn::StateDict& resized, const Model& model, const ConvertOptions& options,
                                  std::vector<std::string> notes);

}  // namespace rv::models
