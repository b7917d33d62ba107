// box_ops.h: bounding-box arithmetic for the DETR-family detectors, on Tensors with autograd
// (torchvision.ops.boxes / DETR's util/box_ops.py).
//
// Formats: xyxy = (x1, y1, x2, y2), corners; cxcywh = (cx, cy, w, h), centre and size (what a
// DETR head predicts, normalised to [0, 1] by the image size). A box tensor is (..., 4).
//
// Every function is built from differentiable engine ops (select, stack, maximum, minimum,
// clamp, arithmetic), so gradients come from autograd and follow PyTorch's rules at the kinks:
// a max/min tie splits its gradient half and half, clamp(min = 0) passes it at 0.
// Float dtypes only (the ops used refuse integers). Degenerate boxes are not refused (torchvision
// does not either): two empty boxes have union 0 and IoU NaN, so the caller keeps w, h > 0
// (a sigmoid output in cxcywh is).
#pragma once
#include "engine/tensor.h"

namespace rv::models::det {

// (..., 4) -> (..., 4)
Tensor box_cxcywh_to_xyxy(const Tensor& boxes);
Tensor box_xyxy_to_cxcywh(const Tensor& boxes);

// (..., 4) xyxy -> (...): (x2 - x1) * (y2 - y1)
Tensor box_area(const Tensor& boxes);

// Pairwise, torchvision's box_iou / generalized_box_iou: boxes1 (N, 4), boxes2 (M, 4), xyxy
// -> (N, M). GIoU = IoU - (area(C) - union) / area(C), C the smallest box enclosing both; it lies
// in [-1, 1] and, unlike IoU, still has a gradient when the boxes do not overlap.
Tensor box_iou(const Tensor& boxes1, const Tensor& boxes2);
Tensor generalized_box_iou(const Tensor& boxes1, const Tensor& boxes2);

// The GIoU of matched pairs: boxes1, boxes2 (..., 4) of the same shape -> (...); equal to the
// diagonal of generalized_box_iou (what DETR's loss takes) without the N x M work.
Tensor elementwise_generalized_box_iou(const Tensor& boxes1, const Tensor& boxes2);

}  // namespace rv::models::det
