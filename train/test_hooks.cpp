// test_hooks.cpp: reads the RV_TEST_* fault-injection variables (see test_hooks.h).
#include "train/test_hooks.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace rv::train {
namespace {

std::optional<int64_t> read(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  size_t used = 0;
  int64_t k = 0;
  try {
    k = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const int64_t least = std::string(name) == "RV_TEST_EXIT_RANK" ? 0 : 1;
  if (used != std::string(v).size() || k < least)
    throw std::invalid_argument(std::string(name) + "='" + v + "': expected an integer >= " + std::to_string(least) +
                                " (a test hook)");
  return k;
}

}  // namespace

TestHooks TestHooks::from_env() { return {read("RV_TEST_EXIT_AFTER_STEP"), read("RV_TEST_NAN_AT_STEP"), read("RV_TEST_EXIT_RANK")}; }

}  // namespace rv::train
