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
// missing, unexpected or mis-shaped key is an error listing all of them. A file converted for a
// non-square size carries its size in its metadata, which tells the pos_embed resize its grid.
#pragma once
#include <map>
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

// A safetensors file as a StateDict (names sorted; values share the file's memory), and its
// metadata into *metadata when given. A pickled PyTorch file (.pth / .pt / .bin) is an error
// that says how to convert it first.
nn::StateDict read_checkpoint(const std::string& path, std::map<std::string, std::string>* metadata = nullptr);

// The patch grid of a file `ropevit convert` wrote (its "img_size" metadata, "HxW", divided by
// `patch_size`); {0, 0} when the metadata has none, so that a square grid is assumed.
Grid source_grid_from_metadata(const std::map<std::string, std::string>& metadata, int64_t patch_size);

// Loads `path` into `model` (in place: the model's tensors keep their identity) and returns the
// notes of every conversion rule applied. Throws std::runtime_error naming the file and listing
// every problem when the checkpoint does not fit the model.
std::vector<std::string> load_pretrained(Model& model, const std::string& path, const PretrainedOptions& options = {});

}  // namespace rv::models
