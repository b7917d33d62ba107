// cmd_export.cpp: `ropevit export CHECKPOINT OUT.safetensors [--ema]`: the weights of a training
// checkpoint alone, with timm's names, for timm / `ropevit eval` / fine-tuning (ckpt.init_from).
#include <cstdio>

#include "train/checkpoint.h"
#include "train/cli_options.h"
#include "train/commands.h"

namespace rv {

int cmd_export(int argc, char** argv) {
  std::string ckpt, out;
  bool ema = false;
  cli::Options opts("ropevit export", "Write the model weights of a training checkpoint alone (timm names) to a "
                                      "safetensors file.");
  opts.positional("CHECKPOINT", "a checkpoint written by ropevit train (runs/<name>/checkpoints/*.safetensors)", &ckpt)
      .positional("OUT.safetensors", "the weights file to write", &out)
      .flag("ema", "export the EMA weights instead (train.ema_decay > 0)", &ema);
  if (!opts.parse(argc, argv)) return 0;
  train::export_weights(ckpt, out, ema);
  std::printf("%s: %s weights of %s\n", out.c_str(), ema ? "EMA" : "model", ckpt.c_str());
  return 0;
}

}  // namespace rv
