// image_folder.cpp: folder scanning, the cached file index and the ImageFolder dataset.
//
// Cache file layout (little-endian; strings are u32 length + bytes):
//   "RVIMGIDX" | u32 version | string root | string class_map contents | i64 root mtime (ns) |
//   u32 C | C x (string class, i64 folder mtime) | u64 N | N x (u32 label, string relative path)
#include "data/image_folder.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "data/decode_image.h"
#include "engine/io/atomic_file.h"

namespace rv::data {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kIndexVersion = 1;

bool is_image_name(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".gif" || ext == ".ppm" || ext == ".pgm";
}

int64_t mtime_ns(const fs::path& p) {
  std::error_code ec;
  const auto t = fs::last_write_time(p, ec);
  if (ec) return -1;
  return int64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

std::vector<std::string> read_class_map(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("class map " + path + ": cannot open the file");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  if (names.empty()) throw std::runtime_error("class map " + path + ": no class names in it");
  return names;
}

// All image files under dir in torchvision's order: its make_dataset walks
// sorted(os.walk(class_dir)), i.e. every folder ordered by its path string (so "a-b" comes before
// "a/x": '-' < '/'), and the files of each folder sorted.
void walk(const fs::path& dir, const std::string& rel, std::vector<std::string>& out) {
  std::vector<std::pair<std::string, fs::path>> dirs = {{rel, dir}};
  for (size_t i = 0; i < dirs.size(); ++i)  // breadth-first collection of every sub-folder
    for (const auto& e : fs::directory_iterator(dirs[i].second, fs::directory_options::follow_directory_symlink))
      if (e.is_directory()) dirs.push_back({dirs[i].first + "/" + e.path().filename().string(), e.path()});
  std::sort(dirs.begin(), dirs.end());
  for (const auto& [name, path] : dirs) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(path, fs::directory_options::follow_directory_symlink)) {
      const std::string f = e.path().filename().string();
      if (e.is_regular_file() && is_image_name(f)) files.push_back(f);
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) out.push_back(name + "/" + f);
  }
}

// ---- cache encoding --------------------------------------------------------------------------
struct Writer {
  std::string b;
  void u32(uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(char(v >> (8 * i))); }
  void u64(uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(char(v >> (8 * i))); }
  void str(const std::string& s) { u32(uint32_t(s.size())); b += s; }
};
struct Reader {
  const std::string& b;
  size_t p = 0;
  bool ok = true;
  bool need(size_t n) { return ok = ok && p + n <= b.size(); }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(b[p + i])) << (8 * i);
    p += 4;
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t(uint8_t(b[p + i])) << (8 * i);
    p += 8;
    return v;
  }
  std::string str() {
    const uint32_t n = u32();
    if (!need(n)) return {};
    std::string s = b.substr(p, n);
    p += n;
    return s;
  }
};

std::string cache_path(const std::string& root, const std::string& cache_dir) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the absolute root path
  for (unsigned char c : root) h = (h ^ c) * 1099511628211ull;
  char name[64];
  std::snprintf(name, sizeof name, "imagefolder-%016llx.idx", (unsigned long long)h);
  return (fs::path(cache_dir) / name).string();
}

}  // namespace

std::string default_cache_dir() {
  if (const char* d = std::getenv("ROPEVIT_CACHE_DIR"); d && *d) return d;
  if (const char* d = std::getenv("XDG_CACHE_HOME"); d && *d) return (fs::path(d) / "ropevit").string();
  if (const char* d = std::getenv("HOME"); d && *d) return (fs::path(d) / ".cache" / "ropevit").string();
  return (fs::temp_directory_path() / "ropevit-cache").string();
}

ImageFolderIndex scan_image_folder(const std::string& root, const std::string& class_map) {
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    throw std::runtime_error("ImageFolder " + root + ": not a directory (expected <root>/<class>/<image files>)");
  ImageFolderIndex idx;
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(root, fs::directory_options::follow_directory_symlink))
    if (e.is_directory()) found.push_back(e.path().filename().string());
  std::sort(found.begin(), found.end());
  if (class_map.empty()) {
    idx.classes = found;
  } else {
    idx.classes = read_class_map(class_map);
    for (const auto& c : idx.classes)
      if (!std::binary_search(found.begin(), found.end(), c))
        throw std::runtime_error("ImageFolder " + root + ": class \"" + c + "\" of the class map " + class_map + " has no folder");
  }
  if (idx.classes.empty()) throw std::runtime_error("ImageFolder " + root + ": no class folders in it");
  for (size_t c = 0; c < idx.classes.size(); ++c) {
    std::vector<std::string> files;
    walk(fs::path(root) / idx.classes[c], idx.classes[c], files);
    for (auto& f : files) {
      idx.files.push_back(std::move(f));
      idx.labels.push_back(int32_t(c));
    }
  }
  if (idx.files.empty()) throw std::runtime_error("ImageFolder " + root + ": no image files in its class folders");
  return idx;
}

ImageFolderIndex load_image_folder_index(const std::string& root_in, const std::string& cache_dir_in,
                                         const std::string& class_map, bool* from_cache) {
  const std::string root = fs::absolute(root_in).lexically_normal().string();
  const std::string cache_dir = cache_dir_in.empty() ? default_cache_dir() : cache_dir_in;
  const std::string cpath = cache_path(root, cache_dir);
  std::string map_text;
  if (!class_map.empty()) map_text = read_file_bytes(class_map);
  if (from_cache) *from_cache = false;

  // Try the cache: same root, class map, root mtime and every class folder's mtime.
  std::error_code ec;
  if (fs::is_regular_file(cpath, ec)) {
    const std::string b = read_file_bytes(cpath);
    Reader r{b};
    bool valid = r.need(8) && b.compare(0, 8, "RVIMGIDX") == 0;
    r.p = 8;
    valid = valid && r.u32() == kIndexVersion && r.str() == root && r.str() == map_text &&
            int64_t(r.u64()) == mtime_ns(root);
    ImageFolderIndex idx;
    const uint32_t C = valid ? r.u32() : 0;
    for (uint32_t c = 0; valid && c < C && r.ok; ++c) {
      idx.classes.push_back(r.str());
      valid = int64_t(r.u64()) == mtime_ns(fs::path(root) / idx.classes.back());
    }
    const uint64_t N = valid ? r.u64() : 0;
    valid = valid && r.ok && N <= b.size();  // each entry takes >= 8 bytes: a bound against garbage
    for (uint64_t i = 0; valid && i < N && r.ok; ++i) {
      const uint32_t label = r.u32();
      idx.files.push_back(r.str());
      idx.labels.push_back(int32_t(label));
      valid = label < C;
    }
    if (valid && r.ok && r.p == b.size() && !idx.files.empty()) {
      if (from_cache) *from_cache = true;
      return idx;
    }
  }

  ImageFolderIndex idx = scan_image_folder(root, class_map);
  Writer w;
  w.b = "RVIMGIDX";
  w.u32(kIndexVersion);
  w.str(root);
  w.str(map_text);
  w.u64(uint64_t(mtime_ns(root)));
  w.u32(uint32_t(idx.classes.size()));
  for (const auto& c : idx.classes) {
    w.str(c);
    w.u64(uint64_t(mtime_ns(fs::path(root) / c)));
  }
  w.u64(idx.files.size());
  for (size_t i = 0; i < idx.files.size(); ++i) {
    w.u32(uint32_t(idx.labels[i]));
    w.str(idx.files[i]);
  }
  try {
    fs::create_directories(cache_dir);
    AtomicFileWriter f(cpath);
    f.write(w.b.data(), w.b.size());
    f.commit();
  } catch (const std::exception&) {
    // Best effort: a read-only cache location only means the next start lists the folder again.
  }
  return idx;
}

ImageFolder::ImageFolder(ImageFolderOptions opt) : opt_(std::move(opt)) {
  index_ = load_image_folder_index(opt_.root, opt_.cache_dir, opt_.class_map, &from_cache_);
  listed_ = int64_t(index_.files.size());
  if (opt_.subset < 0 || opt_.subset > listed_)
    throw std::invalid_argument("ImageFolder " + opt_.root + ": subset = " + std::to_string(opt_.subset) +
                                " but the folder has " + std::to_string(listed_) + " images (expected 0 = all, or 1.." +
                                std::to_string(listed_) + ")");
  if (opt_.subset > 0 && opt_.subset < listed_) {
    ImageFolderIndex kept;
    kept.classes = index_.classes;
    for (int64_t i = 0; i < opt_.subset; ++i) {
      const size_t k = size_t(i * listed_ / opt_.subset);  // strictly increasing since subset <= listed
      kept.files.push_back(std::move(index_.files[k]));
      kept.labels.push_back(index_.labels[k]);
    }
    index_ = std::move(kept);
  }
  if (opt_.train && opt_.train_tf.augment == TrainAugment::rand_augment) {
    ra_ = std::make_unique<RandAugment>(RandAugment::parse(opt_.train_tf.rand_augment));
    // timm: the RandAugment fill is the normalisation mean in 0..255, its filter the pipeline's.
    for (int c = 0; c < 3; ++c) ra_->fill[c] = uint8_t(std::min(255L, std::lround(255 * double(opt_.train_tf.mean[c]))));
    ra_->interpolation = opt_.train_tf.interp;
  }
}

std::string ImageFolder::path(int64_t index) const {
  if (index < 0 || index >= size())
    throw std::out_of_range("ImageFolder: index " + std::to_string(index) + " out of range [0, " + std::to_string(size()) + ")");
  return (fs::path(opt_.root) / index_.files[size_t(index)]).string();
}

int ImageFolder::output_size(const SampleRequest& req) const {
  const int own = opt_.train ? opt_.train_tf.size : opt_.eval_tf.size;
  if (!req.has_size()) return own;
  if (req.height != req.width || req.height < 1)
    throw std::invalid_argument("ImageFolder::get_into: the transforms make square images; a request of " +
                                std::to_string(req.height) + "x" + std::to_string(req.width) +
                                " is not one (expected height = width >= 1)");
  return int(req.height);
}

Shape ImageFolder::sample_shape(const SampleRequest& req) const {
  const int s = output_size(req);
  return {3, s, s};
}

Sample ImageFolder::get(int64_t index, Generator& gen) const {
  Tensor img = empty(sample_shape({}), DType::f32);
  const int64_t label = get_into(index, gen, {}, img);
  return {img, label};
}

int64_t ImageFolder::get_into(int64_t index, Generator& gen, const SampleRequest& req, const Tensor& out) const {
  const std::string p = path(index);  // checks the index
  const Shape want = sample_shape(req);
  if (!out.defined() || out.shape() != want)
    throw std::invalid_argument("ImageFolder::get_into: out must be " + shape_str(want) + ", got " +
                                (out.defined() ? shape_str(out.shape()) : std::string("an undefined tensor")));
  // The file's bytes in a per-thread buffer, reused from sample to sample (read_file_into).
  thread_local std::string bytes;
  read_file_into(p, bytes);
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  const int s = int(want[1]);
  if (opt_.train) {
    RandomDraws rd(gen);
    if (s == opt_.train_tf.size) {
      train_transform_into(d, bytes.size(), p, opt_.train_tf, ra_.get(), rd, out);
    } else {  // multi-resolution batch: the same chain at the batch's size
      TrainTransformOptions t = opt_.train_tf;
      t.size = s;
      train_transform_into(d, bytes.size(), p, t, ra_.get(), rd, out);
    }
  } else {
    EvalTransformOptions e = opt_.eval_tf;
    e.size = s;
    eval_transform_into(d, bytes.size(), p, e, out);
  }
  return index_.labels[size_t(index)];
}

std::string ImageFolder::describe() const {
  std::ostringstream os;
  os << "imagefolder " << opt_.root << ", " << size() << " images";
  if (size() < listed_) os << " (" << size() << " of " << listed_ << ", evenly spread)";
  os << ", " << num_classes() << " classes, ";
  if (opt_.train) {
    const auto& t = opt_.train_tf;
    os << "train: RandomResizedCrop " << t.size << " (" << interp_name(t.interp) << ", " << resize_mode_name(t.resize)
       << " resize), flip " << t.hflip << ", ";
    if (t.augment == TrainAugment::three_augment) os << "3-Augment + jitter " << t.color_jitter;
    else if (t.augment == TrainAugment::rand_augment) os << "RandAugment " << t.rand_augment;
    else os << "jitter " << t.color_jitter;
    os << ", erasing " << t.erasing.probability;
  } else {
    const auto& e = opt_.eval_tf;
    os << "eval: resize " << int(std::floor(e.size / e.crop_pct)) << " (" << interp_name(e.interp) << "), center crop " << e.size;
  }
  os << (from_cache_ ? " (file list from cache)" : "");
  return os.str();
}

}  // namespace rv::data
