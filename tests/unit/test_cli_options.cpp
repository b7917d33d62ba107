// cli::Options (train/cli_options.h): flags, --name value and --name=value, typed values,
// positionals, `--`, --help, and the usage errors that name the option and its close matches.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "train/cli_options.h"

using rv::cli::Options;
using rv::cli::UsageError;

namespace {

// Parses a command line given as words (the first is the command name).
bool parse(Options& o, std::vector<std::string> words) {
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  return o.parse(int(argv.size()), argv.data());
}

struct Cmd {
  bool verbose = false;
  std::string out = "a.txt", config;
  int64_t n = 3;
  double budget = 0.5;
  std::vector<std::string> rest;
  Options opts{"ropevit demo", "A demo command."};
  Cmd() {
    opts.positional("CONFIG", "the config", &config)
        .rest("KEY=VALUE", "overrides", &rest)
        .flag("verbose", "say more", &verbose)
        .value("out", "FILE", "where to write", &out)
        .value("n", "N", "how many", &n)
        .value("budget", "SEC", "seconds per case", &budget)
        .epilog("example: ropevit demo x.json");
  }
};

std::string usage_error(Cmd& c, std::vector<std::string> words) {
  try {
    parse(c.opts, std::move(words));
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("options: flags, both value forms, typed values, positionals and --") {
  Cmd c;
  REQUIRE(parse(c.opts, {"demo", "x.json", "a.b=1", "--verbose", "--out", "o.txt", "--n=7", "--budget", "0.25", "c=2"}));
  CHECK(c.verbose);
  CHECK(c.out == "o.txt");
  CHECK(c.n == 7);
  CHECK(c.budget == 0.25);
  CHECK(c.config == "x.json");
  CHECK(c.rest == std::vector<std::string>{"a.b=1", "c=2"});

  Cmd d;
  REQUIRE(parse(d.opts, {"demo", "--out=x=y", "--", "--verbose", "-z"}));
  CHECK(d.out == "x=y");           // only the first '=' splits
  CHECK_FALSE(d.verbose);          // after --, options are arguments
  CHECK(d.config == "--verbose");
  CHECK(d.rest == std::vector<std::string>{"-z"});
  Cmd e;
  REQUIRE(parse(e.opts, {"demo", "x", "--out", "-"}));  // a value may start with '-'
  CHECK(e.out == "-");
}

TEST_CASE("options: usage errors name the option, what it wanted, and close matches") {
  Cmd c;
  CHECK(usage_error(c, {"demo", "x", "--verbos"}) ==
        "unknown option '--verbos' (did you mean --verbose?); see `ropevit demo --help`");
  CHECK(usage_error(c, {"demo", "x", "--outt=3"}) ==
        "unknown option '--outt' (did you mean --out?); see `ropevit demo --help`");
  CHECK(usage_error(c, {"demo", "x", "--zzzzzz"}) == "unknown option '--zzzzzz'; see `ropevit demo --help`");
  CHECK(usage_error(c, {"demo", "x", "-v"}) == "unknown option '-v'; see `ropevit demo --help`");
  CHECK(usage_error(c, {"demo", "x", "--out"}) == "--out needs a value: --out FILE; see `ropevit demo --help`");
  CHECK(usage_error(c, {"demo", "x", "--verbose=1"}) ==
        "--verbose takes no value (got '--verbose=1'); see `ropevit demo --help`");
  CHECK(usage_error(c, {"demo", "x", "--n", "3.5"}) == "--n: expected an integer, got '3.5'; see `ropevit demo --help`");
  CHECK(usage_error(c, {"demo", "x", "--budget=fast"}) ==
        "--budget: expected a number, got 'fast'; see `ropevit demo --help`");
  CHECK(usage_error(c, {"demo"}) == "missing CONFIG; see `ropevit demo --help`");

  bool flag = false;
  std::string one;
  Options strict("ropevit x", "x");
  strict.positional("A", "a", &one).flag("flag", "f", &flag);
  CHECK_THROWS_WITH_AS(parse(strict, {"x", "a", "b"}), "unexpected argument 'b'; see `ropevit x --help`", UsageError);
}

TEST_CASE("options: --help lists every option and argument, with defaults, and stops the command") {
  Cmd c;
  CHECK_FALSE(parse(c.opts, {"demo", "--help"}));
  Cmd d;
  CHECK_FALSE(parse(d.opts, {"demo", "x", "-h", "--bogus"}));  // help wins over later mistakes
  const std::string h = c.opts.help();
  CHECK(h.rfind("usage: ropevit demo CONFIG [KEY=VALUE ...] [options]\n\nA demo command.\n", 0) == 0);
  for (const char* part : {"  CONFIG ", "the config", "  KEY=VALUE ...", "  --verbose ", "say more",
                           "  --out FILE ", "where to write (default a.txt)", "  --n N ", "how many (default 3)",
                           "  --budget SEC ", "(default 0.5)", "  -h, --help ", "example: ropevit demo x.json"})
    CHECK_MESSAGE(h.find(part) != std::string::npos, part);
}

TEST_CASE("options: values() takes a fixed number of values, refuses --name=, names the count it wanted") {
  std::vector<std::string> got;
  std::string name;
  Options o("ropevit m", "m");
  o.positional("NAME", "n", &name).values("img-size", "H W", "input size", 2, [&](const std::vector<std::string>& v) {
    if (v[0] == "bad") throw UsageError("expected H and W as positive integers");
    got = v;
  });
  REQUIRE(parse(o, {"m", "--img-size", "32", "-48", "vit"}));  // values may start with '-'
  CHECK(got == std::vector<std::string>{"32", "-48"});
  CHECK(name == "vit");
  CHECK_THROWS_WITH_AS(parse(o, {"m", "vit", "--img-size", "32"}),
                       "--img-size needs 2 values, got 1: --img-size H W; see `ropevit m --help`", UsageError);
  CHECK_THROWS_WITH_AS(parse(o, {"m", "vit", "--img-size=32", "32"}),
                       "--img-size takes 2 values: --img-size H W; see `ropevit m --help`", UsageError);
  CHECK_THROWS_WITH_AS(parse(o, {"m", "vit", "--img-size", "bad", "1"}),
                       "--img-size: expected H and W as positive integers; see `ropevit m --help`", UsageError);
  CHECK(o.help().find("  --img-size H W ") != std::string::npos);
  CHECK_THROWS_AS(Options("x", "x").values("one", "V", "v", 1, [](const std::vector<std::string>&) {}),
                  std::invalid_argument);
}
