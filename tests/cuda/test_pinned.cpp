// test_pinned.cpp: page-locked host memory (cuda/allocator/pinned_host_allocator.h): pinned
// tensors, the direct DMA path of to(cuda) (blocking and non-blocking), device -> pinned host
// copies, views into pinned memory, and reuse of a pinned block only after the DMA that read it.
// Skipped (exit 77) without a GPU.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "cuda/allocator/pinned_host_allocator.h"
#include "engine/backend.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  Tensor ac = a.contiguous(), bc = b.contiguous();
  return std::memcmp(ac.raw_data(), bc.raw_data(), size_t(ac.numel()) * ac.itemsize()) == 0;
}

}  // namespace

TEST_CASE("pinned tensors: pin_memory copies once, to(cuda) and back are exact, blocking or not") {
  for (const Shape& shape : {Shape{}, Shape{1}, Shape{7, 13}, Shape{0, 4}, Shape{3, 1 << 20}}) {
    CAPTURE(shape_str(shape));
    const Tensor x = test::test_tensor(shape, 11);
    const Tensor p = x.pin_memory();
    CHECK(p.is_pinned());
    CHECK(same_bytes(p, x));
    CHECK(same_bytes(p.to(kDev).cpu(), x));
    const Tensor d = p.to(kDev, /*non_blocking=*/true);
    CHECK(same_bytes(d.cpu(), x));  // cpu() waits for the compute stream, which waited for the DMA
    // Device -> pinned host: copy_ into a pinned tensor goes through to(cpu) then a host copy;
    // the direct path is to() from the device into a pinned destination made by the backend.
    Tensor back = empty_pinned(shape);
    if (x.numel() > 0)
      backend::get(kDev).copy_to_host(back.raw_data(), d.device_data(), size_t(x.numel()) * 4, 0);
    CHECK(same_bytes(back, x));
  }
}

TEST_CASE("a view into pinned memory takes the direct path; a strided view is staged") {
  const Tensor p = test::test_tensor({8, 33}, 12).pin_memory();
  const Tensor rows = p.narrow(0, 2, 5);  // contiguous, offset into the block
  CHECK(cuda::pinned_host_allocator().contains(rows.raw_data(), size_t(rows.numel()) * 4));
  CHECK(same_bytes(rows.to(kDev, true).cpu(), rows));
  const Tensor cols = p.narrow(1, 3, 7);  // strided: made contiguous (pageable) first
  CHECK(same_bytes(cols.to(kDev, true).cpu(), cols));
}

TEST_CASE("a freed pinned block comes back only after its DMA is done, with the right contents") {
  // Many rounds of: fill a fresh pinned batch, queue a non-blocking copy, drop the batch. If a
  // block were handed out again while its DMA was still queued, a later fill would overwrite
  // data the device had not read yet and some round would arrive wrong.
  const Shape shape = {4, 3, 224, 224};  // 2.4 MB, a real batch
  std::vector<Tensor> on_device;
  std::vector<float> expected;
  for (int round = 0; round < 12; ++round) {
    Tensor batch = empty_pinned(shape);
    batch.fill_(double(round));
    on_device.push_back(batch.to(kDev, true));
  }  // each batch is dropped at once, while its copy may still be queued
  for (int round = 0; round < 12; ++round) {
    const Tensor h = on_device[size_t(round)].cpu();
    const float* v = h.data<float>();
    bool all = true;
    for (int64_t i = 0; i < h.numel(); i += 997) all = all && v[i] == float(round);
    CHECK_MESSAGE(all, "round " << round);
  }
  // The blocks are kept for reuse, not returned to the driver.
  CHECK(cuda::pinned_host_allocator().cached_bytes() >= size_t(shape_numel(shape)) * 4);
}
