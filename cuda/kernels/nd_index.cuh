// nd_index.cuh: turns a linear element index into the element offsets of K strided operands
// that share one shape (device code; included by the .cu kernels only).
//
// Strided kernels launch one thread per output element in row-major order; each thread maps its
// linear index to a multi-index by repeated division and dots it with each operand's strides.
// A broadcast operand has stride 0 in the broadcast dims. The host side drops size-1 dims and
// merges dims that are contiguous in every operand, so the common cases (a whole contiguous
// tensor, a row-broadcast bias) reduce to one or two dims and few divisions.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace rv::cuda {

inline constexpr int kMaxDims = 8;

template <int K>
struct NdIndex {
  int ndim = 0;
  int64_t sizes[kMaxDims] = {};
  int64_t strides[K][kMaxDims] = {};

  __device__ void offsets(int64_t linear, int64_t (&off)[K]) const {
    for (int k = 0; k < K; ++k) off[k] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t i = linear % sizes[d];
      linear /= sizes[d];
      for (int k = 0; k < K; ++k) off[k] += i * strides[k][d];
    }
  }
};

// Builds the index for `shape` and K stride lists (element strides), simplifying the dims.
template <int K>
NdIndex<K> make_nd_index(const std::vector<int64_t>& shape, const std::vector<int64_t>* const (&strides)[K],
                         const char* op) {
  // Drop size-1 dims, then merge dim d into d+1 when, for every operand, stride[d] == size[d+1] * stride[d+1].
  std::vector<int64_t> sz;
  std::vector<std::vector<int64_t>> st(K);
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    sz.push_back(shape[d]);
    for (int k = 0; k < K; ++k) st[k].push_back((*strides[k])[d]);
  }
  std::vector<int64_t> msz;
  std::vector<std::vector<int64_t>> mst(K);
  for (size_t d = 0; d < sz.size(); ++d) {
    bool merge = !msz.empty();
    for (int k = 0; k < K && merge; ++k) merge = mst[k].back() == sz[d] * st[k][d];
    if (merge) {
      msz.back() *= sz[d];
      for (int k = 0; k < K; ++k) mst[k].back() = st[k][d];
    } else {
      msz.push_back(sz[d]);
      for (int k = 0; k < K; ++k) mst[k].push_back(st[k][d]);
    }
  }
  if (msz.size() > size_t(kMaxDims))
    throw std::invalid_argument(std::string(op) + ": more than " + std::to_string(kMaxDims) +
                                " non-mergeable dims are not supported on cuda");
  NdIndex<K> ix;
  ix.ndim = int(msz.size());
  for (int d = 0; d < ix.ndim; ++d) {
    ix.sizes[d] = msz[size_t(d)];
    for (int k = 0; k < K; ++k) ix.strides[k][d] = mst[k][size_t(d)];
  }
  return ix;
}

// Grid size for a grid-stride loop over n elements with `threads` per block: enough blocks to
// fill any current GPU several times over, no more (each thread then does several elements).
inline unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return unsigned(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536);
}

}  // namespace rv::cuda
