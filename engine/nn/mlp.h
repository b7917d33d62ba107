// mlp.h: nn::Mlp, the two-layer feed-forward block of a transformer (timm's layers.Mlp).
//
//   x (..., in) -> fc1 -> act -> drop1 -> norm -> fc2 -> drop2 -> (..., out)
//                  (in -> hidden)                (hidden -> out)
//
// Children carry timm's names, so the state dict is `fc1.weight, fc1.bias, fc2.weight, fc2.bias`
// and a timm checkpoint loads without renaming; `norm` is an Identity (timm's default,
// norm_layer = None) and the two dropouts share the rate `drop`, as in timm.
#pragma once
#include <memory>

#include "engine/nn/activation.h"
#include "engine/nn/dropout.h"
#include "engine/nn/linear.h"

namespace rv::nn {

class Mlp : public UnaryModule {
 public:
  std::shared_ptr<Linear> fc1;           // (hidden, in)
  std::shared_ptr<UnaryModule> act;
  std::shared_ptr<Dropout> drop1;
  std::shared_ptr<Identity> norm;
  std::shared_ptr<Linear> fc2;           // (out, hidden)
  std::shared_ptr<Dropout> drop2;

  // hidden_features = 0 and out_features = 0 mean in_features (timm's None). act defaults to
  // GELU() (exact). fc1 then fc2 draw their default init from `gen`. The dropouts get their
  // Generator later through nn::set_generator (see dropout.h).
  Mlp(int64_t in_features, int64_t hidden_features, int64_t out_features, Generator& gen,
      std::shared_ptr<UnaryModule> act = nullptr, double drop = 0.0, bool bias = true);
  Tensor forward(const Tensor& x) override;  // (..., in) -> (..., out), e.g. (B, N, C)
};

}  // namespace rv::nn
