// The config system (train/config/): merging with provenance, include chains, key=value
// overrides of every type, every error message (unknown key with its suggestion, wrong type,
// out of range, include cycle, missing file, bad JSON with line:column), --print-config, and that
// every file in configs/ resolves cleanly.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "models/registry.h"
#include "train/config/config_file.h"
#include "train/config/overrides.h"
#include "train/config/resolve.h"
#include "train/config/schema.h"
#include "train/suggest.h"

using namespace rv::config;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// A scratch folder for this process, removed at exit.
struct TempDir {
  fs::path path = fs::temp_directory_path() / ("rv_config_test_" + std::to_string(getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
const fs::path& tmp() {
  static TempDir d;
  return d.path;
}

// Writes a file under the scratch folder and returns its path as text.
std::string write(const std::string& name, const std::string& text) {
  const fs::path p = tmp() / name;
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
  return p.lexically_normal().string();
}

// The message resolve_config throws ("" if it does not throw).
std::string error_of(const std::string& path, const std::vector<std::string>& overrides = {}) {
  try {
    resolve_config(path, overrides);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("edit distance and close matches") {
  CHECK(rv::edit_distance("", "") == 0);
  CHECK(rv::edit_distance("abc", "") == 3);
  CHECK(rv::edit_distance("kitten", "sitting") == 3);
  CHECK(rv::edit_distance("lr_mni", "lr_min") == 1);  // a swap is one edit
  CHECK(rv::close_matches("--prnt-config", {"--print-config", "--keys", "--out"}) ==
        std::vector<std::string>{"--print-config"});
  CHECK(rv::close_matches("xyz", {"--print-config"}).empty());
  CHECK(rv::did_you_mean({}) == "");
  CHECK(rv::did_you_mean({"a", "b", "c"}) == " (did you mean a, b or c?)");
}

TEST_CASE("merge: objects merge key by key, other values replace whole, provenance follows") {
  SourcedJson base = SourcedJson::from(json::parse(R"({"optim": {"lr": 1, "betas": [0.9, 0.99]}, "x": {"y": 1}})"), "base");
  SourcedJson top = SourcedJson::from(json::parse(R"({"optim": {"betas": [0.8]}, "x": 5})"), "top");
  base.merge(top);
  CHECK(base.value == json::parse(R"({"optim": {"lr": 1, "betas": [0.8]}, "x": 5})"));
  CHECK(base.origin.at("optim.lr") == "base");
  CHECK(base.origin.at("optim.betas") == "top");
  CHECK(base.origin.at("x") == "top");
  CHECK(base.origin.count("x.y") == 0);  // replaced by a value: its old leaf is gone
  // A value replaced by an object: the leaves of the object take over.
  base.merge(SourcedJson::from(json::parse(R"({"x": {"z": true}})"), "third"));
  CHECK(base.origin.at("x.z") == "third");
  CHECK(base.origin.count("x") == 0);
  CHECK(base.origin_of("x") == "third");
  // set(): dotted paths, groups created, objects merged.
  base.set("optim.eps", 1e-8, "cli");
  base.set("optim", json::parse(R"({"lr": 2})"), "cli");
  CHECK(base.value["optim"] == json::parse(R"({"lr": 2, "betas": [0.8], "eps": 1e-8})"));
  CHECK(base.origin.at("optim.lr") == "cli");
  CHECK(base.origin.at("optim.betas") == "top");
  CHECK_THROWS_WITH_AS(base.set("optim.lr.x", 1, "cli"), doctest::Contains("optim.lr is a value"),
                       std::invalid_argument);
  REQUIRE(base.find("optim.eps") != nullptr);
  CHECK(base.find("optim.nope") == nullptr);
  CHECK(base.find("optim.lr.x") == nullptr);
}

TEST_CASE("include chains: nested, relative to the including file, in order, each value from its file") {
  write("inc/common/root.json", R"({"optim": {"lr": 0.1, "weight_decay": 0.2}, "train": {"epochs": 7}})");
  write("inc/common/mid.json", R"({"include": "root.json", "optim": {"lr": 0.01}})");
  write("inc/other.json", R"({"train": {"epochs": 9, "seed": 3}})");
  const std::string top = write("inc/top.json", R"({"include": ["common/mid.json", "other.json"], "train": {"seed": 4}})");
  ResolvedConfig rc = resolve_config(top);
  CHECK(rc.config.optim.lr == 0.01);
  CHECK(rc.config.optim.weight_decay == 0.2);
  CHECK(rc.config.train.epochs == 9);  // the later include wins
  CHECK(rc.config.train.seed == 4);    // the including file wins over its includes
  const std::string dir = (tmp() / "inc").lexically_normal().string();
  CHECK(rc.origin.at("optim.lr") == dir + "/common/mid.json");
  CHECK(rc.origin.at("optim.weight_decay") == dir + "/common/root.json");
  CHECK(rc.origin.at("train.epochs") == dir + "/other.json");
  CHECK(rc.origin.at("train.seed") == top);
  CHECK(rc.origin.at("optim.eps") == "default");
  CHECK(rc.files == std::vector<std::string>{dir + "/common/root.json", dir + "/common/mid.json", dir + "/other.json", top});
  CHECK_FALSE(rc.json.contains("include"));
}

TEST_CASE("file errors: cycles, missing files, bad JSON with line:column, duplicates, bad include") {
  const std::string a = write("cyc/a.json", R"({"include": "b.json"})");
  write("cyc/b.json", R"({"include": "sub/c.json"})");
  write("cyc/sub/c.json", R"({"include": "../a.json"})");
  const std::string dir = (tmp() / "cyc").lexically_normal().string();
  CHECK(error_of(a) == "include cycle: " + dir + "/a.json -> " + dir + "/b.json -> " + dir + "/sub/c.json -> " + dir +
                           "/a.json");
  const std::string self = write("cyc/self.json", R"({"include": "self.json"})");
  CHECK(error_of(self) == "include cycle: " + self + " -> " + self);

  const std::string missing = write("miss/top.json", R"({"include": "nope.json"})");
  const std::string mdir = (tmp() / "miss").lexically_normal().string();
  CHECK(error_of(missing) == "config file " + mdir + "/nope.json not found (included from " + missing + ")");
  CHECK(error_of(mdir + "/absent.json") == "config file " + mdir + "/absent.json not found");

  const std::string bad = write("bad.json", "{\n  \"optim\": {\"lr\": 1e-3,}\n}\n");
  const std::string e = error_of(bad);
  INFO(e);
  CHECK(e.rfind(bad + ":2:24: invalid JSON: ", 0) == 0);
  CHECK(contains(e, "unexpected '}'"));
  const std::string bad_inc = write("badinc.json", R"({"include": "bad.json"})");
  CHECK(error_of(bad_inc).rfind(bad + ":2:24: invalid JSON", 0) == 0);  // the file at fault, not the includer

  CHECK(error_of(write("dup.json", R"({"optim": {"lr": 1, "eps": 2, "lr": 3}})")) ==
        (tmp() / "dup.json").string() + ": optim.lr: the key appears twice in one object (JSON keeps only the last; "
                                        "remove one)");
  CHECK(contains(error_of(write("list.json", "[1, 2]")), "a config file holds one JSON object ({...}), got array"));
  CHECK(contains(error_of(write("incnum.json", R"({"include": 3})")),
                 "include: expected a file name or a list of file names, got 3"));
}

TEST_CASE("overrides: JSON when it parses, else a string; every type") {
  const std::string f = write("ov.json", R"({"model": {"img_size": [224]}})");
  ResolvedConfig rc = resolve_config(
      f, {"optim.lr=2e-3", "train.epochs=12", "log.tensorboard=false", "data.root=/data/in 1k", "train.run_name=2024",
          "eval.img_sizes=[128,224]", "optim.betas=[0.8,0.9]", "model.img_size=null", "model.depth=[2,2,6,2]",
          "ckpt.keep=1e1", "model.qkv_bias=true", "aug.randaugment=rand-m9-mstd0.5-inc1", "aug.remode=const",
          "optim={\"eps\":1e-6}", "train.amp=off", "meta.note=hello"});
  const TrainConfig& c = rc.config;
  CHECK(c.optim.lr == 2e-3);
  CHECK(c.train.epochs == 12);
  CHECK_FALSE(c.log.tensorboard);
  CHECK(c.data.root == "/data/in 1k");
  CHECK(c.train.run_name == "2024");  // a number typed for a string key stays text
  CHECK(c.eval.img_sizes == std::vector<int64_t>{128, 224});
  CHECK(c.optim.betas == std::vector<double>{0.8, 0.9});
  CHECK_FALSE(c.model.img_size.has_value());  // null unsets the file's value
  CHECK(c.model.depth == std::vector<int64_t>{2, 2, 6, 2});
  CHECK(c.ckpt.keep == 10);  // an integral number is an integer
  CHECK(rc.json["ckpt"]["keep"].is_number_integer());
  CHECK(c.model.qkv_bias == true);
  CHECK(c.aug.randaugment == "rand-m9-mstd0.5-inc1");
  CHECK(c.aug.remode == "const");
  CHECK(c.optim.eps == 1e-6);  // an object merges into the group
  CHECK(c.optim.lr == 2e-3);
  CHECK(c.train.amp == "off");
  CHECK(c.meta["note"] == "hello");
  CHECK(rc.origin.at("optim.lr") == "command line");
  CHECK(rc.origin.at("optim.eps") == "command line");
  CHECK(rc.origin.at("meta.note") == "command line");
  // The later override wins; a single value is a list of one.
  ResolvedConfig again = resolve_config(f, {"eval.img_sizes=160", "train.epochs=3", "train.epochs=4", "sched.warmup_epochs=1"});
  CHECK(again.config.eval.img_sizes == std::vector<int64_t>{160});
  CHECK(again.config.train.epochs == 4);

  Override o = parse_override("a.b=x=y");
  CHECK(o.key == "a.b");
  CHECK(o.value == "x=y");
  CHECK(parse_override("a=").value == "");
  CHECK_THROWS_WITH_AS(parse_override("optim.lr"), "override 'optim.lr': expected key=value (e.g. optim.lr=1e-3)",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_override("optim..lr=1"), doctest::Contains("is not a key"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse_override("=1"), doctest::Contains("is not a key"), std::invalid_argument);
  CHECK(error_of(f, {"optim.lr.x=1"}) == "command line: optim.lr.x: optim.lr is a value (0.0005), not a group of settings");
}

TEST_CASE("check errors name where the value came from and the full key, and list close matches") {
  const std::string f = write("errs.json", R"({"optim": {"lr_min": 1e-5}, "_comment": "ignored", "sched": {"_note": 1}})");
  CHECK(error_of(f) == f + ": optim.lr_min: unknown key (did you mean sched.min_lr?)");
  CHECK(error_of(write("e1.json", R"({"optim": {"lr": "fast"}})")) ==
        (tmp() / "e1.json").string() + ": optim.lr: expected a number > 0, got \"fast\" (a string)");
  CHECK(error_of(write("e2.json", R"({"train": {"label_smoothing": 1.5}})")) ==
        (tmp() / "e2.json").string() + ": train.label_smoothing: 1.5 is out of range (expected in [0, 1))");
  // An include's error names the included file, not the one that included it.
  const std::string base = write("e3/base.json", R"({"optim": {"weight_decay": -1}})");
  CHECK(error_of(write("e3/top.json", R"({"include": "base.json"})")) ==
        base + ": optim.weight_decay: -1 is out of range (expected >= 0)");

  // Several problems at once, one line each, sorted by key.
  const std::string all = error_of(f, {"lr=3", "model.num_classes=4", "optim.name=adam", "train.epochs=x",
                                       "sched.warmup=1", "optim.betas=[0.9]", "train.batch_size=2.5", "optm.lr=1",
                                       "model.img_size=[1,2,3]", "aug.randaugment=rand-m9-x", "log.tensorboard=1",
                                       "data.mean=[0.5,\"a\"]", "ckpt.resume=null"});
  INFO(all);
  CHECK(all.rfind("14 problems in the config:\n", 0) == 0);
  for (const char* line : {
           "  command line: lr: unknown key (did you mean optim.lr?)",
           "  command line: model.num_classes: unknown key (did you mean data.num_classes?)",
           "  command line: train.epochs: expected an integer > 0, got \"x\" (a string)",
           "  command line: sched.warmup: unknown key (did you mean sched.warmup_epochs, sched.warmup_iters or sched.warmup_lr?)",
           "  command line: train.batch_size: expected an integer > 0, got 2.5 (a number)",
           "  command line: optm: unknown key (did you mean optim?)",
           "  command line: model.img_size: expected a list of 1 to 2 integers > 0 (or null: unset), got 3 items",
           "  command line: aug.randaugment: \"rand-m9-x\": 'x' is not a RandAugment setting (m, n, mstd, mmax, inc, p "
           "or w, then a number)",
           "  command line: log.tensorboard: expected true or false, got 1 (a number)",
           "  command line: data.mean: item 1: expected a number, got \"a\" (a string)",
           "  command line: ckpt.resume: expected a string, got null",
       })
    CHECK_MESSAGE(contains(all, line), line);
  CHECK(contains(all, f + ": optim.lr_min: unknown key (did you mean sched.min_lr?)"));
  CHECK(contains(all, "command line: optim.name: \"adam\" is not one of adamw, lamb, sgd (did you mean adamw?)"));
  CHECK(contains(all, "command line: optim.betas: expected a list of 2 numbers in [0, 1), got 1 item"));
  CHECK_FALSE(contains(all, "_comment"));
  CHECK(error_of(f, {"optim=3"}) == "command line: optim: is a group of settings (optim.name, optim.lr, "
                                    "optim.weight_decay, ...): expected an object, got 3 (a number)");
  CHECK_FALSE(contains(all, "_note"));
}

TEST_CASE("rules between keys") {
  const std::string f = write("x.json", R"({"train": {"epochs": 5}})");
  CHECK(error_of(f, {"sched.warmup_epochs=6"}) ==
        "command line: sched.warmup_epochs: 6 warmup epochs is more than the 5 epochs of training (train.epochs, from " +
            f + ")");
  CHECK(contains(error_of(f, {"sched.min_lr=1"}), "sched.min_lr: 1 is above the base LR 0.0005 (optim.lr, from default)"));
  CHECK(contains(error_of(f, {"data.std=[1,1]"}), "data.std: 2 values, but data.mean has 3"));
  CHECK(contains(error_of(f, {"model.in_chans=1"}), "data.mean: 3 values for 1 input channels (model.in_chans, from command line)"));
  CHECK(contains(error_of(f, {"aug.three_augment=true", "aug.randaugment=rand-m9"}),
                 "aug.randaugment: RandAugment and aug.three_augment are alternatives"));
  CHECK(contains(error_of(f, {"aug.scale=[0.9,0.1]"}), "aug.scale: expected [lo, hi] with lo <= hi"));
  CHECK(error_of(f, {"model.in_chans=1", "data.mean=[0.5]", "data.std=0.5", "sched.warmup_epochs=5"}) == "");
}

TEST_CASE("segmentation and iteration rules between keys") {
  const std::string f = write("seg.json", R"({"task": "segmentation", "data": {"dataset": "scenes", "num_classes": 10},
                                              "train": {"iters": 100}, "sched": {"warmup_epochs": 0},
                                              "ckpt": {"best_metric": "mIoU"}})");
  CHECK(error_of(f) == "");
  // The best checkpoint follows a metric of the task.
  CHECK(error_of(f, {"ckpt.best_metric=aAcc"}) == "");
  CHECK(contains(error_of(f, {"ckpt.best_metric=top1"}),
                 "ckpt.best_metric: 'top1' is a classification metric; segmentation keeps the best checkpoint by "
                 "mIoU, mAcc or aAcc"));
  CHECK(contains(error_of(f, {"sched.warmup_epochs=1"}),
                 "sched.warmup_epochs: counts epochs, but train.iters = 100 counts steps (train.iters, from " + f +
                     "); give the warmup as sched.warmup_iters and set sched.warmup_epochs = 0"));
  CHECK(contains(error_of(f, {"sched.warmup_iters=101"}),
                 "sched.warmup_iters: 101 warmup steps is more than the 100 steps of training"));
  CHECK(error_of(f, {"sched.warmup_iters=100", "sched.name=poly"}) == "");
  CHECK(contains(error_of(f, {"train.iters=0", "sched.warmup_epochs=0"}),
                 "train.iters: segmentation counts optimizer steps (mmseg's iterations): set train.iters > 0"));
  CHECK(contains(error_of(f, {"data.dataset=imagefolder"}),
                 "data.dataset: 'imagefolder' has no label maps; segmentation trains on ade20k or scenes"));
  CHECK(contains(error_of(f, {"data.num_classes=150"}), "data.num_classes: 150 classes, but scenes has 10"));
  CHECK(contains(error_of(f, {"data.dataset=ade20k"}), "data.num_classes: 10 classes, but ade20k has 150"));
  CHECK(contains(error_of(f, {"seg.crop=64", "seg.stride=65"}),
                 "seg.stride: 65 is larger than the window seg.crop = 64"));
  CHECK(contains(error_of(f, {"seg.mode=tiles"}), "seg.mode"));
  CHECK(contains(error_of(f, {"sched.name=step"}), "sched.name"));
  CHECK(contains(error_of(f, {"task=detection"}), "task"));
  // Classification: segmentation sets are refused, and sched.warmup_iters needs train.iters.
  const std::string g = write("cls.json", R"({"train": {"epochs": 5}})");
  CHECK(contains(error_of(g, {"data.dataset=scenes"}), "data.dataset: 'scenes' is a segmentation set; set task = "
                                                       "segmentation"));
  CHECK(contains(error_of(g, {"sched.warmup_iters=10"}), "sched.warmup_iters: needs train.iters > 0"));
  CHECK(contains(error_of(g, {"ckpt.best_metric=mIoU"}),
                 "ckpt.best_metric: 'mIoU' is a segmentation metric; classification keeps the best checkpoint by "
                 "top1, top5 or loss"));
  CHECK(error_of(g, {"train.iters=50", "sched.warmup_epochs=0", "sched.warmup_iters=10", "sched.name=poly"}) == "");
  // model.sync_bn = true would be ignored by a classifier (no BatchNorm): refused; false is harmless.
  CHECK(contains(error_of(g, {"model.sync_bn=true"}), "model.sync_bn: applies to segmentation"));
  CHECK(error_of(g, {"model.sync_bn=false"}) == "");
  CHECK(error_of(f, {"model.sync_bn=true"}) == "");
}

TEST_CASE("comments and meta: _keys are notes, meta takes any keys; the resolved JSON round-trips") {
  const std::string f = write("rt.json", R"({"_comment": "a", "optim": {"_why": "b", "lr": 0.003},
                                            "meta": {"target_top1": 80.9, "source": {"paper": "x"}}})");
  ResolvedConfig rc = resolve_config(f, {"train.epochs=2", "sched.warmup_epochs=1"});
  CHECK_FALSE(rc.json.contains("_comment"));
  CHECK_FALSE(rc.json["optim"].contains("_why"));
  CHECK(rc.config.meta["source"]["paper"] == "x");
  CHECK(rc.origin.at("meta.target_top1") == f);
  CHECK(rc.config.train.run_name == "rt");  // from the file's name
  CHECK(rc.origin.at("train.run_name") == kFromFileName);
  // Every key is in the JSON, and the JSON given back as a file resolves to the same config.
  for (const Field& fld : train_schema().fields()) {
    SourcedJson view;
    view.value = rc.json;
    CHECK_MESSAGE(view.find(fld.key) != nullptr, fld.key);
  }
  const std::string again = write("rt_again.json", rc.json.dump(2));
  ResolvedConfig rc2 = resolve_config(again);
  CHECK(rc2.json == rc.json);
  CHECK(train_schema().to_json(rc2.config) == train_schema().to_json(rc.config));
}

TEST_CASE("--print-config shows every key once, its value, and where it came from") {
  write("pc/base.json", R"({"optim": {"name": "lamb"}, "meta": {"target": 80}})");
  const std::string f = write("pc/run.json", R"({"include": "base.json", "train": {"epochs": 10}})");
  ResolvedConfig rc = resolve_config(f, {"optim.lr=0.002"});
  const std::string table = format_config(rc);
  const std::string dir = (tmp() / "pc").lexically_normal().string();
  CHECK(contains(table, "# config: " + f + "\n# includes: " + dir + "/base.json\n"));
  auto line_of = [&](const std::string& key) {
    const size_t at = table.find("\n" + key + " ");
    REQUIRE_MESSAGE(at != std::string::npos, key);
    return table.substr(at + 1, table.find('\n', at + 1) - at - 1);
  };
  auto ends = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  CHECK(contains(line_of("optim.name"), "\"lamb\""));
  CHECK(ends(line_of("optim.name"), dir + "/base.json"));
  CHECK(contains(line_of("optim.lr"), "0.002"));
  CHECK(ends(line_of("optim.lr"), "command line"));
  CHECK(contains(line_of("train.epochs"), "10"));
  CHECK(ends(line_of("train.epochs"), f));
  CHECK(ends(line_of("optim.eps"), "default"));
  CHECK(ends(line_of("train.run_name"), kFromFileName));
  CHECK(ends(line_of("meta.target"), dir + "/base.json"));
  // Every field has exactly one line.
  for (const Field& fld : train_schema().fields()) {
    if (fld.kind == Kind::Object) continue;
    const size_t first = table.find("\n" + fld.key + " ");
    CHECK_MESSAGE(first != std::string::npos, fld.key);
    CHECK_MESSAGE(table.find("\n" + fld.key + " ", first + 1) == std::string::npos, fld.key);
  }
}

TEST_CASE("--keys lists every key with its type, default and help") {
  const std::string keys = format_keys();
  for (const Field& f : train_schema().fields()) {
    const bool listed = contains(keys, "\n" + f.key + "  ") || keys.rfind(f.key + "  ", 0) == 0;
    CHECK_MESSAGE(listed, f.key);
    CHECK_MESSAGE(!f.help.empty(), f.key);
    CHECK_MESSAGE(contains(keys, f.help), f.key);
  }
  CHECK(contains(keys, "optim.name  one of adamw, lamb, sgd; default \"adamw\""));
  CHECK(contains(keys, "optim.lr  a number > 0; default 0.0005"));
  CHECK(contains(keys, "model.img_size  a list of 1 to 2 integers > 0 (or null: unset); default null"));
  // Every group the brief names is there.
  const std::vector<std::string> groups = train_schema().groups();
  for (const char* g : {"model", "data", "aug", "optim", "sched", "train", "eval", "log", "ckpt", "dist"})
    CHECK_MESSAGE(std::find(groups.begin(), groups.end(), g) != groups.end(), g);
}

TEST_CASE("model fields pass through to models::apply_override") {
  const std::string f = write("m.json", R"({"model": {"img_size": [384, 640], "depth": [2, 2, 6, 2], "drop_path_rate": 0.1,
                                          "qkv_bias": false, "pos_embed": "rope_axial"}, "data": {"num_classes": 10},
                                          "train": {"seed": 5}})");
  ResolvedConfig rc = resolve_config(f);
  auto o = rc.config.model_overrides();
  CHECK(o == std::map<std::string, std::string>{{"img_size", "384x640"}, {"depth", "2,2,6,2"}, {"drop_path_rate", "0.1"},
                                                {"qkv_bias", "false"}, {"pos_embed", "rope_axial"},
                                                {"num_classes", "10"}, {"seed", "5"}});
  rv::models::ModelConfig m;
  m.arch = "swin";
  m.num_heads = {3, 6, 12, 24};
  m.patch_size = 4;
  m.embed_dim = 96;
  rv::models::apply_overrides(m, o);
  CHECK(m.img_h == 384);
  CHECK(m.img_w == 640);
  CHECK(m.depths == std::vector<int64_t>{2, 2, 6, 2});
  CHECK(m.drop_path_rate == 0.1);
  CHECK(m.num_classes == 10);
  CHECK(m.seed == 5);
  CHECK_NOTHROW(rv::models::validate(m));
  // An unknown registry name is the registry's error, naming the model.
  CHECK_THROWS_WITH_AS(resolve_config(f, {"model.name=no_such_model"}).config.model_config(),
                       doctest::Contains("unknown model 'no_such_model'"), std::invalid_argument);
}

TEST_CASE("every file in configs/ resolves cleanly, and its model overrides make a valid model") {
  const fs::path dir = fs::path(RV_SOURCE_DIR) / "configs";
  REQUIRE(fs::is_directory(dir));
  int n = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++n;
    const std::string path = entry.path().string();
    INFO("config: " << path);
    ResolvedConfig rc;
    REQUIRE_NOTHROW(rc = resolve_config(path));
    CHECK(rc.config.train.run_name == entry.path().stem().string());
    // The model: from the registry when it knows the name; else the overrides on a hand-made
    // config of the family the name says (the registry's families land separately).
    const std::string& name = rc.config.model.name;
    const auto names = rv::models::model_names();
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      CHECK_NOTHROW(rc.config.model_config());
    } else {
      rv::models::ModelConfig m;
      m.name = name;
      m.arch = name.rfind("swin", 0) == 0 ? "swin" : "vit";
      if (m.arch == "swin") {
        m.pos_embed = "rope_mixed", m.patch_size = 4, m.embed_dim = 96;
        m.depths = {2, 2, 6, 2}, m.num_heads = {3, 6, 12, 24};
      } else if (name.find("base") != std::string::npos) {
        m.embed_dim = 768, m.num_heads = {12};
      }
      CHECK_NOTHROW(rv::models::apply_overrides(m, rc.config.model_overrides()));
      CHECK_NOTHROW(rv::models::validate(m));
      for (int64_t s : rc.config.eval.img_sizes) CHECK_MESSAGE(s % m.patch_size == 0, s);
    }
  }
  CHECK(n >= 9);
}

TEST_CASE("the recipes say what the spec says") {
  const fs::path dir = fs::path(RV_SOURCE_DIR) / "configs";
  TrainConfig s = resolve_config((dir / "deit3_vit_s_rope_mixed.json").string()).config;
  CHECK(s.optim.name == "lamb");
  CHECK(s.optim.lr == 4e-3);
  CHECK(s.optim.weight_decay == 0.03);
  CHECK(s.train.epochs == 400);
  CHECK(s.train.loss == "bce");
  CHECK(s.aug.three_augment);
  CHECK(s.aug.color_jitter == 0.3);
  CHECK(s.optim.lr_scale == "none");

  TrainConfig pt = resolve_config((dir / "deit3_vit_b_rope_mixed_pretrain192.json").string()).config;
  CHECK(pt.model.img_size == std::vector<int64_t>{192});
  CHECK(pt.optim.lr == 3e-3);
  TrainConfig ft = resolve_config((dir / "deit3_vit_b_rope_mixed_finetune224.json").string()).config;
  CHECK(ft.model.img_size == std::vector<int64_t>{224});
  CHECK(ft.optim.name == "adamw");
  CHECK(ft.train.epochs == 20);
  CHECK_FALSE(ft.ckpt.init_from.empty());

  TrainConfig sw = resolve_config((dir / "swin_t_rope_mixed.json").string()).config;
  CHECK(sw.optim.lr == 5e-4);
  CHECK(sw.optim.lr_scale == "linear");
  CHECK(sw.optim.lr_base_batch == 512);
  CHECK(sw.train.clip_grad == 5.0);
  CHECK(sw.aug.reprob == 0.25);
  CHECK(sw.train.label_smoothing == 0.1);

  TrainConfig fm = resolve_config((dir / "fmnist_vit_rope_mixed.json").string()).config;
  TrainConfig fa = resolve_config((dir / "fmnist_vit_ape.json").string()).config;
  CHECK(fm.model.pos_embed == std::nullopt);
  CHECK(fa.model.pos_embed == "ape");
  // The two demo models differ only in the position embedding (and the run name, and notes).
  json jm = train_schema().to_json(fm), ja = train_schema().to_json(fa);
  for (json* j : {&jm, &ja}) {
    (*j)["model"].erase("pos_embed");
    (*j)["train"].erase("run_name");
    j->erase("meta");
  }
  CHECK(jm == ja);
}
