// dropout.cpp: Dropout, DropPath and set_generator; the masks are made by engine/ops/dropout.h.
#include "engine/nn/dropout.h"

#include <stdexcept>
#include <string>

#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"

namespace rv::nn {

namespace {

double checked_p(double p, const char* who) {
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument(std::string(who) + ": expected a probability p in [0, 1], got " + std::to_string(p));
  return p;
}

}  // namespace

Generator& StochasticModule::require_generator(const char* who) const {
  if (!gen_)
    throw std::runtime_error(std::string(who) +
                             ": training with p > 0 needs a Generator; pass a std::shared_ptr<Generator> to the "
                             "constructor or call nn::set_generator(model, gen)");
  return *gen_;
}

Dropout::Dropout(double p, std::shared_ptr<Generator> gen) : StochasticModule(std::move(gen)), p_(checked_p(p, "Dropout")) {}

Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  return dropout(x, p_, true, require_generator("Dropout"));
}

Dropout2d::Dropout2d(double p, std::shared_ptr<Generator> gen)
    : StochasticModule(std::move(gen)), p_(checked_p(p, "Dropout2d")) {}

Tensor Dropout2d::forward(const Tensor& x) {
  if (x.dim() != 4)
    throw std::invalid_argument("Dropout2d: expected a 4-D input (B, C, H, W), got shape " + shape_str(x.shape()));
  if (!is_training() || p_ == 0.0) return x;
  // The mask (B, C, 1, 1) holds 0 or 1/(1-p) and needs no gradient; the product broadcasts it
  // over H and W, and its backward is the same mask times the incoming gradient. It is drawn on
  // x's device (a GPU draws the same Philox bits as the CPU).
  Tensor mask = dropout(ones({x.size(0), x.size(1), 1, 1}, x.dtype(), x.device()), p_, true,
                        require_generator("Dropout2d"));
  return mul(x, mask);
}

DropPath::DropPath(double p, std::shared_ptr<Generator> gen)
    : StochasticModule(std::move(gen)), p_(checked_p(p, "DropPath")) {}

Tensor DropPath::forward(const Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  return drop_path(x, p_, true, require_generator("DropPath"));
}

int64_t set_generator(Module& root, const std::shared_ptr<Generator>& gen) {
  int64_t n = 0;
  for (auto& [name, m] : root.named_modules())
    if (auto* s = dynamic_cast<StochasticModule*>(m)) {
      s->set_generator(gen);
      ++n;
    }
  return n;
}

}  // namespace rv::nn
