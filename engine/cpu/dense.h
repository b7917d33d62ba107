// dense.h: the one conversion every raw-pointer kernel starts from.
#pragma once
#include "engine/tensor.h"

namespace rv::cpu {

// A detached, contiguous tensor with t's values in dtype `dt`: t itself (as an alias) when it
// already is one, else a copy. Detached, so forward kernels that read it record nothing.
inline Tensor dense(const Tensor& t, DType dt) {
  Tensor d = t.detach();
  if (d.dtype() != dt) d = d.to(dt);
  return d.contiguous();
}

}  // namespace rv::cpu
