// cmd_convert.cpp: `ropevit convert IN OUT --model NAME [--img-size H W] [KEY=VALUE ...]`, a
// checkpoint (timm's or the official RoPE-ViT / Swin release) -> a safetensors file in timm's
// names and shapes for one registered model at one resolution.
//
//   IN .pth / .pt / .bin   unpickled by tools/convert_checkpoint.py (python3 with torch), names
//                          unchanged, into a temporary safetensors file next to OUT
//   IN .safetensors        read directly
//   -> models::convert_state_dict against the model built by name + overrides (no weights drawn):
//      renames, drops regenerated buffers, resizes pos_embed / RPB tables, checks every key
//      (--drop-head: a head of another size is left out instead of being an error)
//   -> OUT written atomically, with metadata (model, img_size, overrides, source, notes)
// The notes of every rule applied are printed, one per line.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"
#include "engine/nn/init.h"
#include "models/checkpoint_convert.h"
#include "models/pretrained.h"
#include "models/registry.h"
#include "train/cli_options.h"
#include "train/commands.h"
#include "train/model_args.h"

#ifndef RV_SOURCE_DIR
#define RV_SOURCE_DIR "."
#endif

namespace rv {
namespace {

namespace fs = std::filesystem;

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_pickle(const std::string& path) {
  return ends_with(path, ".pth") || ends_with(path, ".pt") || ends_with(path, ".bin") || ends_with(path, ".pth.tar");
}

// A word for /bin/sh: single-quoted, with embedded quotes escaped.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Removes a temporary file when the command ends, however it ends.
struct TempFile {
  std::string path;
  ~TempFile() {
    std::error_code ec;
    if (!path.empty()) fs::remove(path, ec);
  }
};

// Unpickles `in` into `raw` with tools/convert_checkpoint.py.
void unpickle(const std::string& python, const std::string& in, const std::string& raw, const std::string& key) {
  const std::string script = std::string(RV_SOURCE_DIR) + "/tools/convert_checkpoint.py";
  const std::string by_hand = "convert it by hand, then pass the .safetensors file:\n  python3 " + script + " " +
                              quoted(in) + " raw.safetensors" + (key.empty() ? "" : " --key " + quoted(key)) +
                              "\n  ropevit convert raw.safetensors OUT.safetensors --model NAME";
  if (!fs::exists(script))
    throw std::runtime_error("reading '" + in + "' (a PyTorch pickle) needs " + script + ", which is missing; " +
                             by_hand);
  const std::string probe = quoted(python) + " -c 'import torch, safetensors' >/dev/null 2>&1";
  if (std::system(probe.c_str()) != 0)
    throw std::runtime_error("reading '" + in + "' (a PyTorch pickle) needs " + python +
                             " with torch and safetensors, which were not found (`" + python +
                             " -c \"import torch, safetensors\"` failed); " + by_hand);
  const std::string cmd = quoted(python) + " " + quoted(script) + " " + quoted(in) + " " + quoted(raw) +
                          (key.empty() ? "" : " --key " + quoted(key)) + " 1>&2";
  if (std::system(cmd.c_str()) != 0)
    throw std::runtime_error("tools/convert_checkpoint.py failed on '" + in + "' (its message is above); command: " +
                             cmd);
}

}  // namespace

int cmd_convert(int argc, char** argv) {
  // --img-size takes two values, which cli::Options does not do: take it out first.
  ModelArgs args;
  std::vector<char*> rest = {argv[0]};
  try {
    for (int i = 1; i < argc; ++i)
      if (!parse_img_size(argc, argv, i, args)) rest.push_back(argv[i]);
  } catch (const std::invalid_argument& e) {
    throw cli::UsageError(e.what());  // a command-line mistake: exit 2
  }

  std::string in, out, key, python = "python3";
  bool drop_head = false;
  std::vector<std::string> overrides;
  cli::Options opts("ropevit convert",
                    "Convert a checkpoint (timm's, or the official RoPE-ViT / Swin release) into a safetensors file "
                    "in timm's names and shapes for one model, resizing APE / RPB tables to its resolution.");
  opts.positional("IN", "the checkpoint: .safetensors, or .pth / .pt / .bin (needs python3 with torch)", &in)
      .positional("OUT", "the .safetensors file to write", &out)
      .rest("KEY=VALUE", "model overrides, e.g. img_size=384 num_classes=10 (see `ropevit info MODEL`)", &overrides)
      .value("model", "NAME", "the registered model the weights are for (required)", &args.name)
      .value("key", "KEY", "pickles only: take the state dict from this top-level key (default: model_ema, "
                           "model, module or state_dict, the first found)", &key)
      .value("python", "PATH", "the Python that unpickles .pth files", &python)
      .flag("drop-head", "leave out a head of another size (fine-tuning with a new num_classes); the file then "
                         "loads with model.pretrained_skip_head, the head keeping its initialisation", &drop_head)
      .epilog(
          "also:\n"
          "  --img-size H W          the input size, the same as img_size=HxW (APE / RPB tables are resized to it)\n"
          "\n"
          "examples:\n"
          "  ropevit convert rope_mixed_deit_small_patch16_LS.pth vit_s_mixed.safetensors \\\n"
          "      --model vit_small_patch16_rope_mixed_224\n"
          "  ropevit convert deit3_small.safetensors deit3_s_384.safetensors --model deit3_small_patch16_224 "
          "--img-size 384 384\n"
          "  ropevit convert swin_rope_mixed_tiny_patch4_window7_224.pth swin_t.safetensors \\\n"
          "      --model swin_tiny_patch4_window7_rope_mixed_224");
  if (!opts.parse(int(rest.size()), rest.data())) return 0;
  if (args.name.empty()) throw cli::UsageError("--model NAME is required (`ropevit info --models` lists them)");
  for (const std::string& o : overrides)
    if (!parse_override(o, args)) throw cli::UsageError("expected KEY=VALUE, got '" + o + "'");
  if (!ends_with(out, ".safetensors")) throw cli::UsageError("OUT must end in .safetensors, got '" + out + "'");
  if (!is_pickle(in) && !ends_with(in, ".safetensors"))
    throw cli::UsageError("IN must be a .safetensors, .pth, .pt or .bin file, got '" + in + "'");
  if (!key.empty() && !is_pickle(in)) throw cli::UsageError("--key applies to pickled checkpoints (.pth), not '" + in + "'");
  if (!fs::exists(in)) throw std::runtime_error("no such file: '" + in + "'");

  const models::ModelConfig cfg = resolve_config(args);
  std::shared_ptr<models::Model> model;
  {
    nn::init::SkipInitGuard skip;  // only the names, shapes and windows are needed
    model = models::create_model(cfg);
  }

  TempFile raw;
  std::string source_path = in;
  if (is_pickle(in)) {
    raw.path = out + ".raw." + std::to_string(getpid()) + ".safetensors";
    unpickle(python, in, raw.path, key);
    source_path = raw.path;
  }
  std::map<std::string, std::string> source_metadata;
  const nn::StateDict source = models::read_checkpoint(source_path, &source_metadata);
  const models::ConvertResult result = models::convert_state_dict(
      source, *model,
      models::ConvertOptions{.skip_mismatched_head = drop_head,
                             .source_grid = models::source_grid_from_metadata(source_metadata, cfg.patch_size)});

  std::string notes, overrides_text;
  for (const std::string& n : result.notes) notes += (notes.empty() ? "" : "\n") + n;
  for (const auto& [k, v] : args.overrides) overrides_text += (overrides_text.empty() ? "" : " ") + k + "=" + v;
  NamedTensors tensors(result.state.items().begin(), result.state.items().end());
  const std::map<std::string, std::string> metadata = {
      {"format", "pt"},
      {"model", cfg.name},
      {"img_size", std::to_string(cfg.img_h) + "x" + std::to_string(cfg.img_w)},
      {"overrides", overrides_text},
      {"source", fs::path(in).filename().string()},
      {"notes", notes},
      {"converted_by", "ropevit convert"},
  };
  save_safetensors(out, tensors, metadata);

  for (const std::string& n : result.notes) std::printf("  %s\n", n.c_str());
  std::printf("wrote %s: %zu tensors for %s at %lldx%lld\n", out.c_str(), tensors.size(), cfg.name.c_str(),
              static_cast<long long>(cfg.img_h), static_cast<long long>(cfg.img_w));
  return 0;
}

}  // namespace rv
