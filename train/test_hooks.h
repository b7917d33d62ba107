// test_hooks.h: fault injection for the training tests, read from environment variables. They
// exist only so tests can make a run crash or diverge at a chosen step; never set them otherwise.
//
//   RV_TEST_EXIT_AFTER_STEP=k   the process ends with _exit(137) right after optimizer step k
//                               and the checkpoints due at that step: what `kill -9` at that
//                               moment does (no destructors, no flushing; 137 = 128 + SIGKILL)
//   RV_TEST_EXIT_RANK=r         with several ranks: only rank r takes the exit above (a rank that
//                               dies while the others go on, for the dead-peer tests)
//   RV_TEST_NAN_AT_STEP=k       the loss of optimizer step k (1 = the first) is made NaN
//                               before the backward pass, to exercise train.nan_policy
#pragma once
#include <cstdint>
#include <optional>

namespace rv::train {

struct TestHooks {
  std::optional<int64_t> exit_after_step, nan_at_step, exit_rank;
  static TestHooks from_env();  // unset or empty variables: no hook; a non-integer value throws
};

}  // namespace rv::train
