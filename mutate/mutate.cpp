#include "mutate/mutate.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>

#include "core/prng.hpp"
#include "dispatch/select.hpp"
#include "property/generators.hpp"
#include "regression/corpus_check.hpp"
#include "testbed/testbed.hpp"

namespace pa {

namespace {

/// The text between `key` and the first of `stops` (or the end), and where it ended.
std::string field(const std::string& s, const std::string& key, const char* stops, size_t* end = nullptr) {
  const size_t at = s.find(key);
  if (at == std::string::npos) return "";
  const size_t from = at + key.size();
  const size_t to = s.find_first_of(stops, from);
  if (end) *end = to;
  return s.substr(from, to == std::string::npos ? std::string::npos : to - from);
}

// The file part of a corpus path from "regression/" on (the table stays readable).
std::string short_file(const std::string& f) {
  const size_t at = f.rfind("regression/");
  return at == std::string::npos ? f : f.substr(at);
}

}  // namespace

Finding parse_finding(const std::string& text) {
  Finding f;
  f.text = text;
  const size_t at = text.find(": path=");
  f.file = text.substr(0, at);
  f.path = field(text, " path=", " :\n");
  f.backend = field(text, " backend=", " :\n");
  size_t end = std::string::npos;
  f.metric = field(text, " metric=", ":\n", &end);
  if (end != std::string::npos) {
    const size_t from = text.compare(end, 2, ": ") == 0 ? end + 2 : end;
    const size_t replay = text.find("\n    replay: ", from);
    f.message = text.substr(from, replay == std::string::npos ? std::string::npos : replay - from);
    if (replay != std::string::npos) f.replay = text.substr(replay + 13);
  }
  return f;
}

std::optional<Finding> first_finding(const std::vector<KernelPtr>& kernels, const std::vector<RegressionCase>& cases,
                                     int* cases_run) {
  int n = 0;
  std::optional<Finding> found;
  for (const RegressionCase& r : cases) {
    ++n;
    const std::vector<std::string> f = corpus_findings(r, kernels);
    if (!f.empty()) {
      found = parse_finding(f.front());
      if (found->replay.empty()) found->replay = replay_line(r.c, found->path == "auto" ? "" : found->path);
      break;
    }
  }
  if (cases_run) *cases_run = n;
  return found;
}

std::vector<KernelPtr> with_replaced(const std::vector<KernelPtr>& set, const KernelPtr& k) {
  std::vector<KernelPtr> out = set;
  for (KernelPtr& x : out)
    if (x->name() == k->name()) {
      x = k;
      return out;
    }
  out.push_back(k);
  return out;
}

std::vector<RegressionCase> generated_cases(const Kernel& k, int count, uint64_t seed) {
  std::vector<RegressionCase> out;
  Rng rng(seed, Stream::kMutant);
  // The property suite's generator, leaning the way a mutant is found fastest: options on often
  // (a dropped option shows within a few dozen cases), short contexts on page and partition
  // boundaries, modest heads and pages (a head of 512 costs much and finds nothing a smaller one
  // does not), and one device model per e4m3 flavour so every declared fp8 cache is drawn.
  gen::Limits lim;
  lim.max_seqs = 3;
  lim.max_context = 100;
  lim.long_context = 300;
  lim.big_pools = false;
  gen::Weights w = gen::Weights::leaning(30, 30, 25, 0);
  w.max_head = 128;
  w.max_block = 32;
  const std::vector<Device> devices = {device_reading(DType::bf16), device_reading(DType::fp8_e4m3fn)};
  // The first draws cover every KV dtype the kernel declares (on a device that decodes it), the
  // rest are free.
  std::vector<std::pair<DType, Device>> cover;
  for (const Device& dev : devices)
    for (DType t : gen::drawable_kv_dtypes(k.info().capability, dev))
      if (std::none_of(cover.begin(), cover.end(), [&](const auto& p) { return p.first == t; })) cover.push_back({t, dev});
  for (int attempt = 0; int(out.size()) < count && attempt < 100 * std::max(count, 1); ++attempt) {
    const size_t n = out.size();
    const Device dev = n < cover.size() ? cover[n].second : devices[size_t(rng.uniform_int(0, 1))];
    const std::optional<DType> kv = n < cover.size() ? std::optional<DType>(cover[n].first) : std::nullopt;
    Case c;
    try {
      c = gen::sample(gen::case_in(k, dev, lim, w, kv), rng.next_u64(), "generated case of " + k.name());
    } catch (const InputError&) {
      if (kv) cover.erase(cover.begin() + long(n));  // the declared dtype admits no case: move on
      continue;
    }
    c.seed = seed * 1000003u + uint64_t(out.size());
    RegressionCase r;
    r.name = "generated:" + k.name() + "#" + std::to_string(out.size());
    r.file = r.name;
    r.kind = "captured";  // no dispatcher expectation: it exercises one kernel
    r.description = "drawn inside the declaration of " + k.name();
    r.device = dev;
    r.must_pass = {k.name()};
    r.c = c;
    r.c.name = r.name;
    out.push_back(std::move(r));
  }
  return out;
}

int MutationReport::caught(const std::string& kernel) const {
  return int(std::count_if(results.begin(), results.end(),
                           [&](const MutantResult& r) { return r.caught && (kernel.empty() || r.kernel == kernel); }));
}
int MutationReport::total(const std::string& kernel) const {
  return int(std::count_if(results.begin(), results.end(),
                           [&](const MutantResult& r) { return kernel.empty() || r.kernel == kernel; }));
}

MutationReport mutation_score(const std::vector<KernelPtr>& kernels, const std::vector<RegressionCase>& corpus,
                              const MutationOptions& o) {
  MutationReport rep;
  rep.corpus_cases = int(corpus.size());
  rep.generated_per_kernel = o.generated_cases;
  std::vector<KernelPtr> targets;
  if (o.targets.empty()) targets = kernels;
  for (const std::string& name : o.targets) {
    const auto it = std::find_if(kernels.begin(), kernels.end(), [&](const KernelPtr& k) { return k->name() == name; });
    if (it == kernels.end()) {
      std::vector<std::string> names;
      for (const KernelPtr& k : kernels) names.push_back(k->name());
      throw InputError("mutate: kernel '" + name + "' is not among the kernels under test (" + join(names, ", ") + ")");
    }
    targets.push_back(*it);
  }
  for (const KernelPtr& k : targets) rep.kernels.push_back(k->name());

  // The unmutated set first: a catch means something only when the set is clean without it.
  for (const RegressionCase& r : corpus)
    for (const std::string& f : corpus_findings(r, kernels)) rep.not_clean.push_back(f);
  std::map<std::string, std::vector<RegressionCase>> generated;
  for (const KernelPtr& k : targets) {
    generated[k->name()] = generated_cases(*k, o.generated_cases, o.seed);
    for (const RegressionCase& r : generated[k->name()])
      for (const std::string& f : corpus_findings(r, {k})) rep.not_clean.push_back(f);
  }
  rep.clean = rep.not_clean.empty();

  for (const ContractMutantInfo& m : contract_mutants()) {
    if (!o.mutants.empty() && std::find(o.mutants.begin(), o.mutants.end(), m.id) == o.mutants.end()) continue;
    for (const KernelPtr& k : targets) {
      if (!m.applies(k->info().capability)) continue;
      // A wrong routing-table entry matters only to a kernel the dispatcher routes to.
      if (is_routing(m.id) && routable({k}, aiter_routing()).empty()) continue;
      const KernelPtr mk = mutate(k, m.id);
      MutantResult res;
      res.mutant = m.id;
      res.name = m.name;
      res.incident_class = m.incident_class;
      res.aggregate = m.aggregate;
      res.kernel = k->name();
      int n = 0;
      std::optional<Finding> f = first_finding(with_replaced(kernels, mk), corpus, &n);
      res.cases_run = n;
      res.source = "corpus";
      if (!f && o.generated_cases > 0) {
        // A routing mutant declares more than the kernel: draw inside what the mutant claims.
        const bool routing = m.id == ContractMutant::head_size_routing || m.id == ContractMutant::block_size_routing;
        const std::vector<RegressionCase> own =
            routing ? generated_cases(*mk, o.generated_cases, o.seed) : generated[k->name()];
        f = first_finding({mk}, own, &n);
        res.cases_run += n;
        res.source = "generated";
      }
      res.caught = f.has_value();
      if (f) res.finding = *f;
      else res.source.clear();
      if (o.on_result) o.on_result(res);
      rep.results.push_back(std::move(res));
    }
  }
  return rep;
}

void print_mutation_report(std::ostream& os, const MutationReport& rep) {
  os << "pacheck mutate: " << rep.corpus_cases << " corpus cases";
  if (rep.generated_per_kernel > 0) os << " + " << rep.generated_per_kernel << " generated cases per kernel";
  os << "; unmutated set " << (rep.clean ? "clean" : "NOT CLEAN (the score is not meaningful)") << "\n";
  for (size_t i = 0; i < rep.not_clean.size() && i < 5; ++i) os << "  not clean: " << rep.not_clean[i] << "\n";
  if (rep.not_clean.size() > 5) os << "  ... and " << rep.not_clean.size() - 5 << " more findings\n";
  // Columns padded, never truncated: a long case path widens its row instead of losing its tail.
  const auto row = [&os](const std::string& m, const std::string& k, const std::string& res, const std::string& where,
                         const std::string& metric) {
    os << "  " << std::left << std::setw(30) << m << ' ' << std::setw(12) << k << ' ' << std::setw(9) << res << ' '
       << std::setw(64) << where << ' ' << metric << std::right << "\n";
  };
  row("mutant", "kernel", "result", "first catching case (path)", "metric");
  for (const MutantResult& r : rep.results) {
    const std::string where = r.caught ? short_file(r.finding.file) + " (" + r.finding.path + ")"
                              : r.aggregate ? "-- survived: inside the aggregate bounds of this kernel's declared numerics"
                                            : "-- no case reached it (" + std::to_string(r.cases_run) + " run)";
    row(r.name, r.kernel, r.caught ? "caught" : "SURVIVED", where, r.caught ? r.finding.metric : "");
  }
  for (const std::string& k : rep.kernels) {
    std::vector<std::string> survivors;
    for (const MutantResult& r : rep.results)
      if (r.kernel == k && !r.caught) survivors.push_back(r.name);
    const int total = rep.total(k);
    os << "caught " << rep.caught(k) << "/" << total << " contract mutants that apply to " << k << " ("
       << (total ? 100 * rep.caught(k) / total : 100) << " %)";
    if (!survivors.empty()) os << " (survived: " << join(survivors, ", ") << ")";
    os << "\n";
  }
}

}  // namespace pa
