// cli_options.cpp: parsing argv against the declared options, and the --help text.
#include "train/cli_options.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "train/suggest.h"

namespace rv::cli {
namespace {

std::string number_text(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

}  // namespace

Options::Options(std::string command, std::string summary) : command_(std::move(command)), summary_(std::move(summary)) {}

Options& Options::flag(const std::string& name, const std::string& help, bool* out) {
  Opt o;
  o.name = name;
  o.help = help;
  o.flag = out;
  options_.push_back(std::move(o));
  return *this;
}

Options& Options::value(const std::string& name, const std::string& metavar, const std::string& help,
                        std::function<void(const std::string&)> set, const std::string& default_text) {
  Opt o;
  o.name = name;
  o.metavar = metavar;
  o.help = help;
  o.default_text = default_text;
  o.set = std::move(set);
  options_.push_back(std::move(o));
  return *this;
}

Options& Options::values(const std::string& name, const std::string& metavar, const std::string& help, int count,
                         std::function<void(const std::vector<std::string>&)> set) {
  if (count < 2) throw std::invalid_argument("cli::Options::values(--" + name + "): count must be >= 2 (use value())");
  Opt o;
  o.name = name;
  o.metavar = metavar;
  o.help = help;
  o.count = count;
  o.set_all = std::move(set);
  options_.push_back(std::move(o));
  return *this;
}

Options& Options::value(const std::string& name, const std::string& metavar, const std::string& help,
                        std::string* out) {
  return value(name, metavar, help, [out](const std::string& v) { *out = v; }, *out);
}

Options& Options::value(const std::string& name, const std::string& metavar, const std::string& help, int64_t* out) {
  return value(
      name, metavar, help,
      [out](const std::string& v) {
        int64_t x = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
        if (v.empty() || ec != std::errc() || end != v.data() + v.size())
          throw UsageError("expected an integer, got '" + v + "'");
        *out = x;
      },
      std::to_string(*out));
}

Options& Options::value(const std::string& name, const std::string& metavar, const std::string& help, double* out) {
  return value(
      name, metavar, help,
      [out](const std::string& v) {
        double x = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
        if (v.empty() || ec != std::errc() || end != v.data() + v.size() || !std::isfinite(x))
          throw UsageError("expected a number, got '" + v + "'");
        *out = x;
      },
      number_text(*out));
}

Options& Options::positional(const std::string& name, const std::string& help, std::string* out, bool required) {
  positionals_.push_back({name, help, out, nullptr, required});
  return *this;
}

Options& Options::rest(const std::string& name, const std::string& help, std::vector<std::string>* out) {
  positionals_.push_back({name, help, nullptr, out, false});
  return *this;
}

Options& Options::epilog(const std::string& text) {
  epilog_ = text;
  return *this;
}

const Options::Opt* Options::find(const std::string& name) const {
  for (const Opt& o : options_)
    if (o.name == name) return &o;
  return nullptr;
}

void Options::fail(const std::string& what) const {
  throw UsageError(what + "; see `" + command_ + " --help`");
}

bool Options::parse(int argc, char** argv) {
  size_t next_positional = 0;
  bool options_done = false;
  auto take_positional = [&](const std::string& arg) {
    if (next_positional >= positionals_.size()) fail("unexpected argument '" + arg + "'");
    Positional& p = positionals_[next_positional];
    if (p.rest) {
      p.rest->push_back(arg);
    } else {
      *p.out = arg;
      ++next_positional;
    }
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      take_positional(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      std::fputs(help().c_str(), stdout);
      return false;
    }
    // --name or --name=value
    const size_t eq = arg.find('=');
    const bool long_form = arg.rfind("--", 0) == 0;
    const std::string typed = eq == std::string::npos ? arg : arg.substr(0, eq);
    const Opt* o = long_form ? find(typed.substr(2)) : nullptr;
    if (!o) {
      std::vector<std::string> names = {"--help"};
      for (const Opt& x : options_) names.push_back("--" + x.name);
      fail("unknown option '" + typed + "'" + did_you_mean(close_matches(typed, names)));
    }
    if (o->flag) {
      if (eq != std::string::npos) fail("--" + o->name + " takes no value (got '" + arg + "')");
      *o->flag = true;
      continue;
    }
    if (o->count > 1) {
      const std::string usage = "--" + o->name + " " + o->metavar;
      if (eq != std::string::npos) fail("--" + o->name + " takes " + std::to_string(o->count) + " values: " + usage);
      if (i + o->count >= argc)
        fail("--" + o->name + " needs " + std::to_string(o->count) + " values, got " + std::to_string(argc - 1 - i) +
             ": " + usage);
      std::vector<std::string> vs(argv + i + 1, argv + i + 1 + o->count);
      i += o->count;
      try {
        o->set_all(vs);
      } catch (const std::exception& e) {
        fail("--" + o->name + ": " + e.what());
      }
      continue;
    }
    std::string v;
    if (eq != std::string::npos) {
      v = arg.substr(eq + 1);
    } else {
      if (i + 1 >= argc) fail("--" + o->name + " needs a value: --" + o->name + " " + o->metavar);
      v = argv[++i];
    }
    try {
      o->set(v);
    } catch (const std::exception& e) {
      fail("--" + o->name + ": " + e.what());
    }
  }
  for (size_t p = next_positional; p < positionals_.size(); ++p)
    if (positionals_[p].required) fail("missing " + positionals_[p].name);
  return true;
}

std::string Options::help() const {
  std::ostringstream o;
  o << "usage: " << command_;
  for (const Positional& p : positionals_) {
    if (p.rest) o << " [" << p.name << " ...]";
    else if (p.required) o << " " << p.name;
    else o << " [" << p.name << "]";
  }
  o << " [options]\n\n" << summary_ << "\n";
  auto row = [&](const std::string& left, const std::string& text) {
    o << "  " << left;
    if (left.size() < 24) o << std::string(24 - left.size(), ' ');
    else o << "\n" << std::string(26, ' ');
    o << text << "\n";
  };
  if (!positionals_.empty()) {
    o << "\narguments:\n";
    for (const Positional& p : positionals_) row(p.rest ? p.name + " ..." : p.name, p.help);
  }
  o << "\noptions:\n";
  for (const Opt& x : options_) {
    std::string text = x.help;
    if (!x.default_text.empty()) text += " (default " + x.default_text + ")";
    row("--" + x.name + (x.metavar.empty() ? "" : " " + x.metavar), text);
  }
  row("-h, --help", "show this help and exit");
  if (!epilog_.empty()) o << "\n" << epilog_ << (epilog_.back() == '\n' ? "" : "\n");
  return o.str();
}

}  // namespace rv::cli
