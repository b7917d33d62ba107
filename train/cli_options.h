// cli_options.h: a small declarative option parser shared by the `ropevit` subcommands.
//
//   bool print = false; std::string path; std::vector<std::string> overrides;
//   cli::Options opts("ropevit config", "resolve a config and print it");
//   opts.positional("CONFIG.json", "the config file", &path)
//       .rest("KEY=VALUE", "overrides, e.g. optim.lr=1e-3", &overrides)
//       .flag("print-config", "show every value and where it came from", &print);
//   if (!opts.parse(argc, argv)) return 0;   // --help was printed
//
// Every command gets `-h/--help` listing each option with its help; options take `--name value`
// or `--name=value`; `--` ends the options. A mistake throws cli::UsageError naming the option
// and its close matches ("unknown option '--prnt-config' (did you mean --print-config?)"), which
// main() turns into exit status 2, as argparse does.
#pragma once
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace rv::cli {

class UsageError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class Options {
 public:
  // command: as typed ("ropevit config"); summary: one line under the usage.
  Options(std::string command, std::string summary);

  // --name, no value.
  Options& flag(const std::string& name, const std::string& help, bool* out);
  // --name VALUE / --name=VALUE. A non-empty initial value of *out is shown as the default.
  Options& value(const std::string& name, const std::string& metavar, const std::string& help, std::string* out);
  Options& value(const std::string& name, const std::string& metavar, const std::string& help, int64_t* out);
  Options& value(const std::string& name, const std::string& metavar, const std::string& help, double* out);
  // The general form: set() gets the text and may throw UsageError (or anything; it is reworded
  // to name the option).
  Options& value(const std::string& name, const std::string& metavar, const std::string& help,
                 std::function<void(const std::string&)> set, const std::string& default_text = "");
  // --name V1 .. Vcount: an option that takes `count` values (e.g. --img-size H W, metavar
  // "H W"); the --name=value form is refused for it (the shell splits the rest anyway).
  Options& values(const std::string& name, const std::string& metavar, const std::string& help, int count,
                  std::function<void(const std::vector<std::string>&)> set);
  // Positional arguments, in order. An optional one may be left out (the command decides).
  Options& positional(const std::string& name, const std::string& help, std::string* out, bool required = true);
  // Every remaining positional argument.
  Options& rest(const std::string& name, const std::string& help, std::vector<std::string>* out);
  // Text printed after the options (examples).
  Options& epilog(const std::string& text);

  // argv[0] is the command name. Returns false when --help was asked for and printed to stdout.
  bool parse(int argc, char** argv);
  std::string help() const;

 private:
  struct Opt {
    std::string name, metavar, help, default_text;
    bool* flag = nullptr;
    std::function<void(const std::string&)> set;
    int count = 1;  // values after --name; > 1 only through values(), which sets set_all
    std::function<void(const std::vector<std::string>&)> set_all;
  };
  struct Positional {
    std::string name, help;
    std::string* out = nullptr;
    std::vector<std::string>* rest = nullptr;
    bool required = true;
  };
  const Opt* find(const std::string& name) const;
  [[noreturn]] void fail(const std::string& what) const;

  std::string command_, summary_, epilog_;
  std::vector<Opt> options_;
  std::vector<Positional> positionals_;
};

}  // namespace rv::cli
