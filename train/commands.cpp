// commands.cpp: the subcommand table.
#include "train/commands.h"

namespace rv {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"info", "the build (compiler, threads, BLAS); a model's params, GMACs, memory", cmd_info},
      {"bench", "time ops or a whole model (against reference libraries and PyTorch), or the input pipeline", cmd_bench},
      {"config", "resolve a training config (includes, overrides, checks) and print it", cmd_config},
      {"train", "train a model from a config into a run folder (logs, checkpoints, plots); --resume", cmd_train},
      {"eval", "top-1/top-5 of a run or checkpoint at one or more image sizes, table + CSV/JSON + plot", cmd_eval},
      {"export", "the weights of a training checkpoint alone, as safetensors with timm names", cmd_export},
      {"convert", "a timm / official RoPE-ViT checkpoint -> safetensors for a model (names, APE / RPB resize)", cmd_convert},
      {"make-scenes", "write a synthetic COCO detection set and ADE20k segmentation set (Fashion-MNIST scenes)",
       cmd_make_scenes},
  };
  return table;
}

}  // namespace rv
