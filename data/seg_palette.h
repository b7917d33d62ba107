// seg_palette.h: colours for segmentation pictures: one RGB triple per class, for the overlays
// `ropevit eval --pred-dir` writes (train/seg/seg_predictions.h).
//
//   ade20k_palette()        mmseg's ADE20KDataset palette (150 colours, in label order), so our
//                           pictures of ADE20k predictions look like mmseg's
//   generated_palette(K)    K distinct colours for any other class list (the scenes: 10): hues
//                           spaced by the golden angle, a pure function of the class index
//   seg_palette(classes)    the first when `classes` is ADE20k's list, else the second
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace rv::data {

using Rgb = std::array<uint8_t, 3>;

const std::vector<Rgb>& ade20k_palette();
std::vector<Rgb> generated_palette(int64_t num_classes);
std::vector<Rgb> seg_palette(const std::vector<std::string>& class_names);

}  // namespace rv::data
