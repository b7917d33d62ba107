// cli_run.h: what the command-line tests (tests/integration/test_*_cli.cpp) share: running the
// ropevit program as a user does and capturing what it prints, a scratch folder removed at exit,
// and small text helpers.
//
//   const rv::test::TempDir& tmp() { static rv::test::TempDir d("rv_train_cli"); return d; }
//   rv::test::CliRun r = rv::test::ropevit("train cfg.json train.epochs=1", {.cwd = RV_SOURCE_DIR});
//   CHECK(r.code == 0);  CHECK(rv::test::contains(r.out, "top1"));
//
// The program's path comes from tests/CMakeLists.txt (RV_ROPEVIT_BIN, compiled into
// cli_run.cpp only), which also builds ropevit before any test that links this.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace rv::test {

// A folder under the system temp dir named <prefix>_<pid> (so parallel test executables do not
// collide), created empty and removed with everything in it when the object dies.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

struct CliRun {
  int code = -1;       // exit status; -1 when killed by a signal
  std::string out, err;
  double seconds = 0;  // wall time of the whole run
};

struct CliOptions {
  std::string env;  // prefix of the command line, e.g. "RV_TEST_EXIT_AFTER_STEP=3"
  std::string cwd;  // folder to run in; "" = the test's own
};

// Runs `[env] ropevit <args>` through the shell (args is shell text: quote paths) and returns its
// exit status, stdout and stderr. Fails the current test when the shell cannot be started.
CliRun ropevit(const std::string& args, const CliOptions& opt = {});

// The program's path, for tests that start it themselves (several processes at once).
std::string ropevit_path();

// The whole file ("" when it cannot be read).
std::string read_file(const std::filesystem::path& p);
// The non-empty lines of s.
std::vector<std::string> lines(const std::string& s);
inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace rv::test
