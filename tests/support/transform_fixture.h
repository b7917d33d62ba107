// transform_fixture.h: what the transform fixture tests (tests/fixtures/test_transforms.cpp,
// test_det_transforms.cpp, test_seg_transforms.cpp) share: a safetensors file of reference
// tensors written by a tools/make_*_fixtures.py script, whose metadata entry "cases" lists the
// cases as JSON, and the conversion of a stored (H, W, C) uint8 tensor to a data::Image.
//
//   const rv::test::TransformFixture& ref() {
//     static const rv::test::TransformFixture r("transforms_ref.safetensors");
//     return r;
//   }
//   data::Image in = rv::test::image_of(ref().t.at("case3.input"));
#pragma once
#include <cstring>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "data/image.h"
#include "engine/io/safetensors.h"
#include "engine/tensor.h"

namespace rv::test {

struct TransformFixture {
  std::map<std::string, Tensor> t;  // every tensor of the file, by name
  nlohmann::json cases;             // the metadata entry "cases"
  explicit TransformFixture(const std::string& file_name) {
    SafetensorsFile f = SafetensorsFile::open(std::string(RV_FIXTURE_DIR) + "/" + file_name);
    t = f.tensors();
    cases = nlohmann::json::parse(f.metadata().at("cases"));
  }
};

// A contiguous (H, W, C) uint8 tensor as an Image (a copy of its bytes).
inline data::Image image_of(const Tensor& t) {
  data::Image im(int(t.shape()[0]), int(t.shape()[1]), int(t.shape()[2]));
  std::memcpy(im.pixels.data(), t.data<uint8_t>(), im.pixels.size());
  return im;
}

}  // namespace rv::test
