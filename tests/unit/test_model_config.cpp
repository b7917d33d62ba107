// ModelConfig overrides (key=value, as on the command line) and the whole-config checks.
#include <doctest/doctest.h>

#include <stdexcept>

#include "models/model_config.h"
#include "models/registry.h"

using namespace rv::models;

namespace {
ModelConfig vit() {
  ModelConfig c;
  c.name = "test_vit";
  c.arch = "vit";
  return c;
}
ModelConfig swin() {
  ModelConfig c;
  c.name = "test_swin";
  c.arch = "swin";
  c.pos_embed = "rpb";
  c.patch_size = 4;
  c.embed_dim = 96;
  c.depths = {2, 2, 6, 2};
  c.num_heads = {3, 6, 12, 24};
  return c;
}
}  // namespace

TEST_CASE("img_size takes one size or height x width") {
  ModelConfig c = vit();
  apply_override(c, "img_size", "320");
  CHECK(c.img_h == 320);
  CHECK(c.img_w == 320);
  apply_override(c, "img_size", "384x640");
  CHECK(c.img_h == 384);
  CHECK(c.img_w == 640);
  CHECK_THROWS_WITH_AS(apply_override(c, "img_size", "384x"), doctest::Contains("img_size=384x"),
                       std::invalid_argument);
  CHECK_THROWS_AS(apply_override(c, "img_size", "1x2x3"), std::invalid_argument);
  CHECK_THROWS_AS(apply_override(c, "img_size", "abc"), std::invalid_argument);
}

TEST_CASE("overrides set numbers, booleans and lists, and reject junk") {
  ModelConfig c = vit();
  apply_overrides(c, {{"drop_path_rate", "0.1"}, {"num_classes", "10"}, {"ape_antialias", "false"}, {"depth", "4"}});
  CHECK(c.drop_path_rate == 0.1);
  CHECK(c.num_classes == 10);
  CHECK_FALSE(c.ape_antialias);
  CHECK(c.depth() == 4);
  CHECK_THROWS_WITH_AS(apply_override(c, "drop_path_rate", "0.1x"), doctest::Contains("a finite number"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(apply_override(c, "qkv_bias", "yes"), doctest::Contains("true or false"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(apply_override(c, "dpr", "0.1"), doctest::Contains("unknown override key 'dpr'"),
                       std::invalid_argument);
  // A field of the other family is refused, not silently ignored.
  CHECK_THROWS_WITH_AS(apply_override(c, "window_size", "7"), doctest::Contains("Swin models only"),
                       std::invalid_argument);
  ModelConfig s = swin();
  apply_override(s, "depths", "2,2,18,2");
  CHECK(s.depth() == 24);
  CHECK_THROWS_WITH_AS(apply_override(s, "layer_scale_init", "1e-5"), doctest::Contains("ViT models only"),
                       std::invalid_argument);
  CHECK_THROWS_AS(apply_override(s, "depths", "2,,2"), std::invalid_argument);
  CHECK_THROWS_AS(apply_override(s, "depths", "2,2,"), std::invalid_argument);
}

TEST_CASE("validate names the field that is wrong") {
  ModelConfig c = vit();
  CHECK_NOTHROW(validate(c));
  c.img_h = 225;
  CHECK_THROWS_WITH_AS(validate(c), doctest::Contains("not divisible by the patch size 16"), std::invalid_argument);
  c = vit();
  c.num_heads = {5};
  CHECK_THROWS_WITH_AS(validate(c), doctest::Contains("not divisible by num_heads 5"), std::invalid_argument);
  c = vit();
  c.pos_embed = "rpb";
  CHECK_THROWS_WITH_AS(validate(c), doctest::Contains("pos_embed 'rpb'"), std::invalid_argument);
  c = vit();
  c.drop_path_rate = 1.0;
  CHECK_THROWS_AS(validate(c), std::invalid_argument);
  ModelConfig s = swin();
  CHECK_NOTHROW(validate(s));
  s.num_heads = {3, 6, 12};
  CHECK_THROWS_WITH_AS(validate(s), doctest::Contains("one entry per stage"), std::invalid_argument);
  s = swin();
  s.pos_embed = "rope_mixed_ape";
  CHECK_THROWS_AS(validate(s), std::invalid_argument);
}

TEST_CASE("an unknown model name is an error that says so") {
  CHECK_THROWS_WITH_AS(model_config("no_such_model"), doctest::Contains("unknown model 'no_such_model'"),
                       std::invalid_argument);
}
