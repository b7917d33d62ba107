// index_device.h: gather, scatter_add and index_add on a device (index_device.cpp says how).
// Called by the ops of index.h after their checks, with the index already on the host, checked,
// int64 and contiguous.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace rv {

Tensor gather_on_device(const Tensor& x, int64_t dim, const Tensor& idx);
Tensor scatter_add_on_device(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src);
Tensor index_add_on_device(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src);

}  // namespace rv
