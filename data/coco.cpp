// coco.cpp: the COCO instances reader: JSON parsed by nlohmann/json, every field checked with an
// error naming the file, the item and the key; the category map and mmdet's training filters.
#include "data/coco.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace rv::data {

namespace {

using json = nlohmann::json;

// Names one item in errors: "file: annotations[3] (id 17): 'bbox': ...".
struct Where {
  const std::string& file;
  const char* list;
  size_t index;
  const json* item;

  std::string prefix() const {
    std::string s = file + ": " + list + "[" + std::to_string(index) + "]";
    if (item && item->is_object()) {
      auto it = item->find("id");
      if (it != item->end() && it->is_number_integer()) s += " (id " + std::to_string(it->get<int64_t>()) + ")";
    }
    return s;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw std::runtime_error(prefix() + ": '" + key + "': " + what);
  }
  const json& field(const std::string& key) const {
    auto it = item->find(key);
    if (it == item->end()) fail(key, "missing");
    return *it;
  }
  int64_t integer(const std::string& key) const {
    const json& v = field(key);
    if (!v.is_number_integer()) fail(key, "expected an integer, got " + v.dump());
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) fail(key, "out of range: " + v.dump());
    return v.get<int64_t>();
  }
  double number(const json& v, const std::string& key) const {
    if (!v.is_number()) fail(key, "expected a number, got " + v.dump());
    const double x = v.get<double>();
    if (!std::isfinite(x)) fail(key, "expected a finite number, got " + v.dump());
    return x;
  }
  std::string string(const std::string& key, bool required = true) const {
    auto it = item->find(key);
    if (it == item->end()) {
      if (required) fail(key, "missing");
      return "";
    }
    if (!it->is_string()) fail(key, "expected a string, got " + it->dump());
    return it->get<std::string>();
  }
};

const json& top_list(const json& doc, const char* key, const std::string& file) {
  auto it = doc.find(key);
  if (it == doc.end()) throw std::runtime_error(file + ": '" + key + "': missing (a COCO instances file has images, annotations and categories)");
  if (!it->is_array()) throw std::runtime_error(file + ": '" + key + "': expected a list, got a " + it->type_name());
  return *it;
}

}  // namespace

CocoInstances CocoInstances::parse(const std::string& text, const std::string& file) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    throw std::runtime_error(file + ": not valid JSON: " + e.what());
  }
  if (!doc.is_object()) throw std::runtime_error(file + ": expected a JSON object at the top, got a " + std::string(doc.type_name()));

  CocoInstances c;
  c.label_ = file;
  const json& images = top_list(doc, "images", file);
  const json& anns = top_list(doc, "annotations", file);
  const json& cats = top_list(doc, "categories", file);

  for (size_t i = 0; i < images.size(); ++i) {
    const Where w{file, "images", i, &images[i]};
    if (!images[i].is_object()) throw std::runtime_error(w.prefix() + ": expected an object, got " + images[i].dump());
    CocoImage im;
    im.id = w.integer("id");
    im.file_name = w.string("file_name");
    if (im.file_name.empty()) w.fail("file_name", "empty");
    im.width = w.integer("width");
    im.height = w.integer("height");
    if (im.width <= 0) w.fail("width", "expected > 0, got " + std::to_string(im.width));
    if (im.height <= 0) w.fail("height", "expected > 0, got " + std::to_string(im.height));
    if (!c.image_index_.emplace(im.id, int64_t(c.images_.size())).second)
      w.fail("id", "image id " + std::to_string(im.id) + " appears twice");
    c.images_.push_back(std::move(im));
  }

  for (size_t i = 0; i < cats.size(); ++i) {
    const Where w{file, "categories", i, &cats[i]};
    if (!cats[i].is_object()) throw std::runtime_error(w.prefix() + ": expected an object, got " + cats[i].dump());
    CocoCategory cat;
    cat.id = w.integer("id");
    cat.name = w.string("name");
    cat.supercategory = w.string("supercategory", /*required=*/false);
    for (const CocoCategory& o : c.categories_)
      if (o.id == cat.id) w.fail("id", "category id " + std::to_string(cat.id) + " appears twice");
    c.categories_.push_back(std::move(cat));
  }
  std::stable_sort(c.categories_.begin(), c.categories_.end(),
                   [](const CocoCategory& a, const CocoCategory& b) { return a.id < b.id; });
  for (size_t k = 0; k < c.categories_.size(); ++k) c.category_label_[c.categories_[k].id] = int64_t(k);

  c.per_image_.assign(c.images_.size(), {});
  std::unordered_map<int64_t, int64_t> ann_ids;
  for (size_t i = 0; i < anns.size(); ++i) {
    const Where w{file, "annotations", i, &anns[i]};
    if (!anns[i].is_object()) throw std::runtime_error(w.prefix() + ": expected an object, got " + anns[i].dump());
    CocoAnnotation a;
    a.id = w.integer("id");
    if (!ann_ids.emplace(a.id, int64_t(i)).second) w.fail("id", "annotation id " + std::to_string(a.id) + " appears twice");
    a.image_id = w.integer("image_id");
    auto img = c.image_index_.find(a.image_id);
    if (img == c.image_index_.end()) w.fail("image_id", std::to_string(a.image_id) + " is not among the images");
    a.category_id = w.integer("category_id");
    if (!c.category_label_.count(a.category_id)) w.fail("category_id", std::to_string(a.category_id) + " is not among the categories");
    const json& b = w.field("bbox");
    if (!b.is_array() || b.size() != 4)
      w.fail("bbox", "expected 4 numbers [x, y, w, h], got " + (b.is_array() ? std::to_string(b.size()) + " entries" : b.dump()));
    for (int k = 0; k < 4; ++k) a.bbox[size_t(k)] = w.number(b[size_t(k)], "bbox");
    if (a.bbox[2] < 0 || a.bbox[3] < 0) w.fail("bbox", "expected w, h >= 0, got " + b.dump());
    a.area = w.number(w.field("area"), "area");
    if (a.area < 0) w.fail("area", "expected >= 0, got " + w.field("area").dump());
    auto cr = anns[i].find("iscrowd");
    if (cr != anns[i].end()) {
      if (cr->is_boolean()) a.iscrowd = cr->get<bool>();
      else if (cr->is_number_integer() && (cr->get<int64_t>() == 0 || cr->get<int64_t>() == 1)) a.iscrowd = cr->get<int64_t>() == 1;
      else w.fail("iscrowd", "expected 0 or 1, got " + cr->dump());
    }
    c.per_image_[size_t(img->second)].push_back(int64_t(c.annotations_.size()));
    c.annotations_.push_back(a);
  }
  return c;
}

CocoInstances CocoInstances::read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open the COCO annotation file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw std::runtime_error(path + ": read error");
  return parse(ss.str(), path);
}

int64_t CocoInstances::label_of(int64_t category_id) const {
  auto it = category_label_.find(category_id);
  if (it == category_label_.end())
    throw std::out_of_range(label_ + ": category id " + std::to_string(category_id) + " is not among the categories");
  return it->second;
}

int64_t CocoInstances::category_id_of(int64_t label) const {
  if (label < 0 || label >= num_classes())
    throw std::out_of_range(label_ + ": label " + std::to_string(label) + " is outside 0.." + std::to_string(num_classes() - 1));
  return categories_[size_t(label)].id;
}

int64_t CocoInstances::image_index_of(int64_t image_id) const {
  auto it = image_index_.find(image_id);
  if (it == image_index_.end())
    throw std::out_of_range(label_ + ": image id " + std::to_string(image_id) + " is not among the images");
  return it->second;
}

CocoTargets CocoInstances::targets(int64_t image_index) const {
  const CocoImage& im = images_.at(size_t(image_index));
  CocoTargets t;
  for (int64_t k : per_image_[size_t(image_index)]) {
    const CocoAnnotation& a = annotations_[size_t(k)];
    const auto [x, y, w, h] = a.bbox;
    // mmdet: the box must overlap the image, and be a real object (area > 0, at least 1 px a side).
    const double inter_w = std::max(0.0, std::min(x + w, double(im.width)) - std::max(x, 0.0));
    const double inter_h = std::max(0.0, std::min(y + h, double(im.height)) - std::max(y, 0.0));
    if (inter_w * inter_h == 0 || a.area <= 0 || w < 1 || h < 1) continue;
    const std::array<double, 4> xyxy = {x, y, x + w, y + h};
    if (a.iscrowd) {
      t.crowd_boxes.push_back(xyxy);
    } else {
      t.boxes.push_back(xyxy);
      t.labels.push_back(category_label_.at(a.category_id));
    }
  }
  return t;
}

std::vector<int64_t> CocoInstances::train_image_indices(int64_t min_size) const {
  std::vector<int64_t> keep;
  for (size_t i = 0; i < images_.size(); ++i)
    if (!per_image_[i].empty() && std::min(images_[i].width, images_[i].height) >= min_size) keep.push_back(int64_t(i));
  return keep;
}

std::vector<int64_t> CocoInstances::image_ids() const {
  std::vector<int64_t> ids;
  for (const CocoImage& im : images_) ids.push_back(im.id);
  return ids;
}

std::vector<int64_t> CocoInstances::category_ids() const {
  std::vector<int64_t> ids;
  for (const CocoCategory& c : categories_) ids.push_back(c.id);
  return ids;
}

std::vector<CocoGroundTruth> CocoInstances::ground_truth() const {
  std::vector<CocoGroundTruth> g;
  g.reserve(annotations_.size());
  for (const CocoAnnotation& a : annotations_) g.push_back({a.image_id, a.category_id, a.bbox, a.area, a.iscrowd, false});
  return g;
}

std::string CocoInstances::describe_categories() const {
  std::string s;
  for (size_t k = 0; k < categories_.size(); ++k) {
    if (k) s += ", ";
    s += "label " + std::to_string(k) + " = id " + std::to_string(categories_[k].id) + " '" + categories_[k].name + "'";
  }
  return s;
}

}  // namespace rv::data
