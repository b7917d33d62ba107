// bench_seg_model.h: `ropevit bench model upernet_<backbone>`: the segmenter (UperNet with the
// ADE20k recipe's heads on a ViT or Swin backbone) timed like a classifier is (bench_model.h):
//   forward           eval mode, no grad: UperNet::encode_decode, the decode logits resized to the
//                     input (whole-image inference of one crop)
//   forward+backward  train mode: zero_grad, UperNet::loss (decode CE + 0.4 x auxiliary CE,
//                     ignore 255, on fixed labels (B, H, W) u8), backward
// on the CPU or cuda:0 (--device; a step ends with a device synchronize, so the time is the
// device's). tools/bench_torch_models.py times the same model in PyTorch (timm's ViT with the
// plain PyTorch UperNet of tools/make_seg_fixtures_upernet.py) with --with-torch / --torch.
#pragma once
#include <cstdint>
#include <map>
#include <string>

namespace rv::bench {

struct SegBenchRequest {
  std::string backbone;                          // a registered ViT or Swin ("vit_base_patch16_rope_mixed_224")
  std::map<std::string, std::string> overrides;  // backbone config overrides; img_size=HxW is the crop
  int64_t batch = 2, iters = 5, warmup = 1;
  std::string device = "cpu";                    // cpu | cuda
  std::string out_path, torch_path, script;      // --out, --torch, --torch-script
  bool with_torch = false;
};

int bench_seg_model(const SegBenchRequest& r);

}  // namespace rv::bench
