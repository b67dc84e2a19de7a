#include "tools/args.hpp"

#include <CLI/CLI.hpp>

#include "core/case.hpp"

namespace pa::tools {

namespace {
// "Usage: pacheck diff [flags] BASE.json NEW.json": the positionals are named in the usage line
// and explained in the summary, rather than listed as an option without a description.
class Usage : public CLI::Formatter {
 public:
  explicit Usage(std::string positional) : positional_(std::move(positional)) { column_width(30); }
  std::string make_usage(const CLI::App*, std::string name) const override {
    return "Usage: " + name + " [flags]" + (positional_.empty() ? "" : " " + positional_) + "\n";
  }

 private:
  std::string positional_;
};
}  // namespace

Args::Args(std::string command, std::string summary, std::vector<Flag> flags, std::string positional,
           size_t max_positional)
    : app_(std::make_unique<CLI::App>(std::move(summary), std::move(command))), flags_(std::move(flags)),
      max_positional_(max_positional) {
  app_->set_help_flag("-h,--help", "this text")->group("flags");
  app_->footer("exit codes: 0 all pass, 1 failures or regressions, 2 usage or input error, 130 interrupted");
  for (const Flag& f : flags_) {
    std::string names = f.name.size() == 1 ? "-" + f.name + ",--" + f.name : "--" + f.name;
    if (!f.letter.empty()) names = "-" + f.letter + "," + names;
    // Help lines are one paragraph each: CLI11 does not indent continuation lines.
    std::string help;
    for (size_t i = 0; i < f.help.size(); ++i)
      if (f.help[i] != '\n') help += f.help[i];
      else {
        help += ' ';
        while (i + 1 < f.help.size() && f.help[i + 1] == ' ') ++i;
      }
    if (f.repeatable && help.find("repeatable") == std::string::npos) help += " (repeatable)";
    CLI::Option* o = nullptr;
    if (f.metavar.empty()) {
      o = app_->add_flag(names, switches_[f.name], help);
      if (!f.repeatable) o->multi_option_policy(CLI::MultiOptionPolicy::Throw);
    } else if (f.repeatable) {
      o = app_->add_option(names, raw_[f.name], help)->allow_extra_args(false);
      o->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    } else {
      o = app_->add_option(names, single_[f.name], help)->multi_option_policy(CLI::MultiOptionPolicy::Throw);
    }
    if (!f.metavar.empty()) o->type_name(f.metavar);
    o->group(f.group);
    options_[f.name] = o;
  }
  if (max_positional > 0) app_->add_option("args", positional_, "")->expected(-1)->group("");
  app_->formatter(std::make_shared<Usage>(std::move(positional)));
}

Args::~Args() = default;

bool Args::parse(int argc, char** argv, int begin) {
  std::vector<std::string> args;
  for (int i = argc - 1; i >= begin; --i) args.emplace_back(argv[i]);  // CLI11 takes them reversed
  try {
    app_->parse(args);
  } catch (const CLI::CallForHelp&) {
    return false;
  } catch (const CLI::ParseError& e) {
    throw InputError(std::string(e.what()) + " (see " + app_->get_name() + " --help)");
  }
  if (positional_.size() > max_positional_)
    throw InputError("unexpected argument '" + positional_[max_positional_] + "' (see " + app_->get_name() + " --help)");
  for (const Flag& f : flags_) {
    if (f.metavar.empty()) {
      if (switches_[f.name] > 0) values_[f.name].assign(size_t(switches_[f.name]), "");
    } else if (f.repeatable) {
      if (!raw_[f.name].empty()) values_[f.name] = raw_[f.name];
    } else if (options_[f.name]->count() > 0) {
      values_[f.name] = {single_[f.name]};
    }
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

std::string Args::help_text() const { return app_->help(); }

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
