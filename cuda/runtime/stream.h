// stream.h: the two streams of each device.
//
// compute: every kernel, memset and device-to-device copy, in order. Memory freed by a tensor
//          goes back to the allocator's list for this stream, so reusing it needs no sync.
// side:    host <-> device transfers (and, later, communication), so they can overlap compute.
//          Work on it is ordered against compute with events (see pinned_copy.cpp).
// Both are non-blocking streams (no implicit sync with the legacy default stream), created on
// first use and kept for the life of the process.
#pragma once
#include <cuda_runtime.h>

namespace rv::cuda {

cudaStream_t compute_stream(int device);
cudaStream_t side_stream(int device);

// Makes `waiter` wait (on the device, not the host) for everything queued so far on `producer`.
void stream_wait(cudaStream_t waiter, cudaStream_t producer);

}  // namespace rv::cuda
