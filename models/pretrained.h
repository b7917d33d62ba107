// pretrained.h: loading pretrained weights into a model: a safetensors file in timm's names (a
// timm checkpoint converted by tools/convert_checkpoint.py, a file written by `ropevit convert`)
// or in the official RoPE-ViT / Swin names, for the model at any resolution.
//
//   auto model = models::create_model("vit_small_patch16_rope_mixed_ape_224", {{"img_size", "320"}});
//   auto notes = models::load_pretrained(*model, "rope_mixed_ape_deit_small.safetensors");
//   // notes: "dropped 2 regenerated buffers: freqs_t_x, freqs_t_y", "reshaped freqs ...",
//   //        "resized pos_embed 14x14 -> 20x20 (bicubic, antialias on)"
//
// The file goes through convert_state_dict (models/checkpoint_convert.h), so the same renaming
// and resizing applies as in `ropevit convert`, then load_state_dict with strict checking: any
// missing, unexpected or mis-shaped key is an error listing all of them.
#pragma once
#include <string>
#include <vector>

#include "engine/nn/state_dict.h"
#include "models/checkpoint_convert.h"
#include "models/model.h"

namespace rv::models {

struct PretrainedOptions {
  // A head of another size (fine-tuning with a new num_classes, or num_classes = 0) keeps the
  // model's own initialisation instead of failing, as timm's pretrained loading does; reported
  // in the notes.
  bool skip_mismatched_head = false;
};

// A safetensors file as a StateDict (names sorted; values share the file's memory). A pickled
// PyTorch file (.pth / .pt / .bin) is an error that says how to convert it first.
nn::StateDict read_checkpoint(const std::string& path);

// Loads `path` into `model` (in place: the model's tensors keep their identity) and returns the
// notes of every conversion rule applied. Throws std::runtime_error naming the file and listing
// every problem when the checkpoint does not fit the model.
std::vector<std::string> load_pretrained(Model& model, const std::string& path, const PretrainedOptions& options = {});

}  // namespace rv::models
