// mlp.cpp: nn::Mlp — builds timm's children in timm's order and chains them.
#include "engine/nn/mlp.h"

#include <stdexcept>
#include <string>

namespace rv::nn {

Mlp::Mlp(int64_t in_features, int64_t hidden_features, int64_t out_features, Generator& gen,
         std::shared_ptr<UnaryModule> activation, double drop, bool bias) {
  if (in_features <= 0 || hidden_features < 0 || out_features < 0)
    throw std::invalid_argument("Mlp: expected in_features > 0 and hidden/out_features >= 0 (0 = in_features), got " +
                                std::to_string(in_features) + ", " + std::to_string(hidden_features) + ", " +
                                std::to_string(out_features));
  const int64_t hidden = hidden_features ? hidden_features : in_features;
  const int64_t out = out_features ? out_features : in_features;
  fc1 = register_module("fc1", std::make_shared<Linear>(in_features, hidden, gen, bias));
  act = register_module("act", activation ? std::move(activation) : std::make_shared<GELU>());
  drop1 = register_module("drop1", std::make_shared<Dropout>(drop));
  norm = register_module("norm", std::make_shared<Identity>());
  fc2 = register_module("fc2", std::make_shared<Linear>(hidden, out, gen, bias));
  drop2 = register_module("drop2", std::make_shared<Dropout>(drop));
}

Tensor Mlp::forward(const Tensor& x) {
  Tensor h = drop1->forward(act->forward(fc1->forward(x)));  // (..., hidden)
  return drop2->forward(fc2->forward(norm->forward(h)));      // (..., out)
}

}  // namespace rv::nn
