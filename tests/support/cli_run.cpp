// cli_run.cpp: running the ropevit program from a test (see cli_run.h).
#include "tests/support/cli_run.h"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#ifndef RV_ROPEVIT_BIN
#error "RV_ROPEVIT_BIN (the path of the ropevit program) is set by tests/CMakeLists.txt"
#endif

namespace rv::test {

namespace fs = std::filesystem;

TempDir::TempDir(const std::string& prefix)
    : path(fs::temp_directory_path() / (prefix + "_" + std::to_string(::getpid()))) {
  std::error_code ec;
  fs::remove_all(path, ec);  // a leftover of a crashed run with a recycled pid
  fs::create_directories(path);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path, ec);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

std::string ropevit_path() { return RV_ROPEVIT_BIN; }

CliRun ropevit(const std::string& args, const CliOptions& opt) {
  // stderr goes to a file of its own (popen reads only stdout); mkstemp keeps two runs of the
  // same executable, or of two executables, from sharing it.
  std::string err_path = (fs::temp_directory_path() / "rv_cli_stderr_XXXXXX").string();
  const int fd = ::mkstemp(err_path.data());
  REQUIRE_MESSAGE(fd >= 0, "cannot create a temporary file for stderr in " << fs::temp_directory_path());
  ::close(fd);
  std::string cmd;
  if (!opt.cwd.empty()) cmd += "cd '" + opt.cwd + "' && ";
  if (!opt.env.empty()) cmd += opt.env + " ";
  cmd += std::string("'") + RV_ROPEVIT_BIN + "' " + args + " 2>'" + err_path + "'";
  CliRun r;
  const auto t0 = std::chrono::steady_clock::now();
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    std::remove(err_path.c_str());
    FAIL("cannot run: " << cmd);
  }
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err_path);
  std::remove(err_path.c_str());
  return r;
}

}  // namespace rv::test
