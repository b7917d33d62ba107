// fixture_tensors.h: the tensors of one committed fixture file (tests/fixtures/data/<file>), read
// once per test process, and a lookup that fails the current test naming a missing key. For the
// model-level fixtures whose tests read tensors by name (the op fixtures go through fixture.h).
//
//   const Tensor& x = rv::test::fixture_tensor("vitdet.safetensors", "input");
//   for (const auto& [k, v] : rv::test::fixture_tensors("vitdet.safetensors")) ...
#pragma once
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "engine/io/safetensors.h"
#include "engine/tensor.h"

namespace rv::test {

inline const std::map<std::string, Tensor>& fixture_tensors(const std::string& file) {
  static std::map<std::string, std::map<std::string, Tensor>> loaded;  // test processes are single-threaded
  auto it = loaded.find(file);
  if (it == loaded.end()) it = loaded.emplace(file, load_safetensors(std::string(RV_FIXTURE_DIR) + "/" + file)).first;
  return it->second;
}

inline const Tensor& fixture_tensor(const std::string& file, const std::string& key) {
  const auto& d = fixture_tensors(file);
  auto it = d.find(key);
  REQUIRE_MESSAGE(it != d.end(), "fixture key missing in " << file << ": " << key);
  return it->second;
}

}  // namespace rv::test
