#include "tools/args.hpp"

#include <cctype>
#include <cstdint>

#include "core/case.hpp"

namespace pa::tools {

Args::Args(std::string command, std::string summary, std::vector<Flag> flags, std::string positional,
           size_t max_positional)
    : command_(std::move(command)), summary_(std::move(summary)), positional_help_(std::move(positional)),
      max_positional_(max_positional), flags_(std::move(flags)) {}

bool Args::parse(int argc, char** argv, int begin) {
  for (int i = begin; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") return false;
    if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
      std::string name = a.substr(2), value;
      bool inline_value = false;
      if (const size_t eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inline_value = true;
      }
      const Flag* f = nullptr;
      for (const Flag& x : flags_)
        if (x.name == name) f = &x;
      if (!f && !allow_extra_)
        throw InputError("unknown flag --" + name + " for '" + command_ + "' (see " + command_ + " --help)");
      const bool takes_value = f ? !f->metavar.empty() : true;
      if (takes_value && !inline_value) {
        if (i + 1 >= argc) throw InputError("--" + name + " needs a value" + (f ? " (" + f->metavar + ")" : ""));
        value = argv[++i];
      }
      if (!takes_value && inline_value) throw InputError("--" + name + " takes no value (got '" + value + "')");
      if (!f) {
        extra_.emplace_back(name, value);
        continue;
      }
      if (values_.count(name) && !f->repeatable) throw InputError("--" + name + " given twice");
      values_[name].push_back(value);
      continue;
    }
    if (a.size() == 2 && a[0] == '-' && std::isalpha(static_cast<unsigned char>(a[1]))) {
      // One-letter flags are also spelled with one dash (`-o FILE`).
      const Flag* f = nullptr;
      for (const Flag& x : flags_)
        if (x.name == a.substr(1)) f = &x;
      if (f && !f->metavar.empty()) {
        if (i + 1 >= argc) throw InputError(a + " needs a value (" + f->metavar + ")");
        if (values_.count(f->name) && !f->repeatable) throw InputError(a + " given twice");
        values_[f->name].push_back(argv[++i]);
        continue;
      }
    }
    if (a.size() > 1 && a[0] == '-' && !std::isdigit(static_cast<unsigned char>(a[1])))
      throw InputError("unknown flag " + a + " for '" + command_ + "' (see " + command_ + " --help)");
    if (positional_.size() >= max_positional_)
      throw InputError("unexpected argument '" + a + "' for '" + command_ + "' (see " + command_ + " --help)");
    positional_.push_back(a);
  }
  return true;
}

std::string Args::get(const std::string& name, const std::string& dflt) const {
  auto it = values_.find(name);
  return it == values_.end() || it->second.empty() ? dflt : it->second.back();
}

const std::vector<std::string>& Args::all(const std::string& name) const {
  static const std::vector<std::string> kNone;
  auto it = values_.find(name);
  return it == values_.end() ? kNone : it->second;
}

std::string Args::help_text() const {
  std::string s = "usage: " + command_ + (flags_.empty() ? "" : " [flags]") +
                  (positional_help_.empty() ? "" : " " + positional_help_) + "\n\n" + summary_ + "\n\nflags:\n";
  for (const Flag& f : flags_) {
    std::string left = "  --" + f.name + (f.metavar.empty() ? "" : " " + f.metavar);
    if (left.size() < 30) left.resize(30, ' ');
    else left += "\n" + std::string(30, ' ');
    s += left + f.help + (f.repeatable ? " (repeatable)" : "") + "\n";
  }
  s += "  --help, -h                  this text\n";
  if (allow_extra_) s += "\n" + extra_help_ + "\n";
  return s;
}

uint64_t parse_u64(const std::string& flag, const std::string& value) {
  if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos || value.size() > 20)
    throw InputError("--" + flag + " " + value + ": expected a non-negative integer");
  try {
    return std::stoull(value);
  } catch (const std::exception&) {
    throw InputError("--" + flag + " " + value + ": out of range");
  }
}

int64_t parse_i64(const std::string& flag, const std::string& value) {
  const bool neg = !value.empty() && value[0] == '-';
  const uint64_t u = parse_u64(flag, neg ? value.substr(1) : value);
  if (u > uint64_t(INT64_MAX)) throw InputError("--" + flag + " " + value + ": out of range");
  return neg ? -int64_t(u) : int64_t(u);
}

}  // namespace pa::tools
