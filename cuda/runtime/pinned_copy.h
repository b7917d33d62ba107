// pinned_copy.h: host <-> device copies of pageable host memory through pinned staging buffers.
//
// Why: a cudaMemcpy from pageable memory is staged by the driver anyway, synchronously and
// without overlap. We stage ourselves, in chunks, through two pinned buffers: while the DMA
// engine moves chunk i on the side stream, the CPU fills (or drains) the other buffer.
//
// Ordering (all on the device, no host-wide sync):
//   to device:   side waits for compute (the destination block may still be read by queued
//                kernels of its previous owner), chunks go on side, then compute waits for side,
//                so every kernel queued afterwards sees the data. The host buffer may be reused
//                as soon as the call returns (it was copied into the staging buffers).
//   to host:     side waits for compute (the kernels that produce the source), chunks go on side;
//                the call returns once the last chunk is in the host buffer.
#pragma once
#include <cstddef>

namespace rv::cuda {

void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device);

// The staging chunk size (bytes); a copy larger than this is split.
size_t pinned_chunk_bytes();

}  // namespace rv::cuda
