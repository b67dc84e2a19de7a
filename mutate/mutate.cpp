#include "mutate/mutate.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>

#include "core/prng.hpp"
#include "dispatch/select.hpp"
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

// ---- the case generator -------------------------------------------------------------------------

template <class E>
std::vector<E> declared(uint32_t mask, std::initializer_list<E> candidates) {
  std::vector<E> v;
  for (E e : candidates)
    if (mask & bit(e)) v.push_back(e);
  return v;
}
template <class T>
T pick(Rng& rng, const std::vector<T>& v) {
  return v[size_t(rng.uniform_int(0, int64_t(v.size()) - 1))];
}
bool chance(Rng& rng, double p) { return rng.uniform() < p; }

/// The smaller values of a declared list when it has any (a case of head 512 or page 256 costs
/// much and finds nothing a smaller one does not), else the list itself.
std::vector<int32_t> modest(const std::vector<int32_t>& v, int32_t limit) {
  std::vector<int32_t> out;
  for (int32_t x : v)
    if (x <= limit) out.push_back(x);
  return out.empty() ? v : out;
}

// One draw inside the declaration. Options are on often (about a third of the draws each) so a
// dropped option is met within a few dozen cases; context lengths sit on page boundaries.
Case draw_case(const Capability& cap, Rng& rng) {
  Case c;
  const auto q = declared<DType>(cap.q_dtypes, {DType::bf16, DType::fp16});
  const auto kv = declared<DType>(cap.kv_dtypes, {DType::bf16, DType::fp16, DType::fp8_e4m3fn, DType::fp8_e4m3fnuz, DType::int8});
  const auto layouts = declared<KvLayout>(cap.layouts, {KvLayout::nhd, KvLayout::hnd, KvLayout::vllm, KvLayout::shuffled});
  auto scales = declared<ScaleMode>(cap.scales, {ScaleMode::none, ScaleMode::per_tensor, ScaleMode::per_head,
                                                 ScaleMode::per_token_block_major, ScaleMode::per_token_head_major});
  if (q.empty() || kv.empty() || layouts.empty() || scales.empty()) return c;  // declined below
  c.q_dtype = pick(rng, q);
  c.kv_dtype = pick(rng, kv);
  c.kv_layout = pick(rng, layouts);
  if (c.kv_dtype == DType::int8 || (cap.needs_token_scales_for_8bit && is_8bit(c.kv_dtype))) {
    const bool token_only = cap.needs_token_scales_for_8bit && is_8bit(c.kv_dtype);
    scales.erase(std::remove_if(scales.begin(), scales.end(),
                                [&](ScaleMode m) { return m == ScaleMode::none || (token_only && !is_per_token(m)); }),
                 scales.end());
    if (scales.empty()) return c;
  }
  c.kv_scale = pick(rng, scales);
  c.head_size = pick(rng, modest(cap.head_sizes, 128));
  c.block_size = pick(rng, modest(cap.block_sizes, 32));
  std::vector<int32_t> groups;
  for (int32_t g : {1, 2, 3, 4, 8})
    if (g <= cap.max_gqa) groups.push_back(g);
  const int32_t G = groups.empty() ? 1 : pick(rng, groups);
  c.num_kv_heads = int32_t(rng.uniform_int(1, 2));
  c.num_q_heads = c.num_kv_heads * G;
  c.q_len = 1;
  if (cap.max_q_len > 1 && chance(rng, 0.25)) {
    int32_t top = std::min(cap.max_q_len, 4);
    if (cap.max_q_len_x_gqa) top = std::min(top, std::max(1, cap.max_q_len_x_gqa / G));
    c.q_len = int32_t(rng.uniform_int(1, top));
  }
  const int32_t B = c.block_size;
  c.num_seqs = int32_t(rng.uniform_int(1, 3));
  c.context_lens.clear();
  for (int32_t s = 0; s < c.num_seqs; ++s) {
    const int32_t boundary[] = {1, B - 1, B, B + 1, 2 * B, 2 * B + 1, 3 * B - 1, 3 * B + 1};
    int32_t ctx = chance(rng, 0.75) ? boundary[rng.uniform_int(0, 7)] : int32_t(rng.uniform_int(1, 4 * B + 7));
    if (chance(rng, 0.05)) ctx = 8 * B + 3;  // several split-K partitions
    c.context_lens.push_back(std::max({ctx, c.q_len, 1}));
  }
  // Split-K over one or two pages makes every case a multi-partition case.
  c.partition_size = cap.partition_multiple_of_block ? pick(rng, std::vector<int32_t>{B, 2 * B, std::max(B, 256 / B * B)})
                                                     : 256;
  if (cap.strided_pages && chance(rng, 0.3)) c.page_pad = pick(rng, std::vector<int64_t>{8, 16, 40});
  if (cap.custom_softmax_scale && chance(rng, 0.3)) c.softmax_scale = rng.uniform(0.5, 1.5) / std::sqrt(double(c.head_size));
  if (cap.sliding_window && chance(rng, 0.3)) c.sliding_window = pick(rng, std::vector<int32_t>{1, 2, B, B + 3});
  if (cap.logit_softcap && chance(rng, 0.3)) c.logit_softcap = pick(rng, std::vector<double>{2.0, 5.0});
  c.alibi = cap.alibi && chance(rng, 0.25);
  c.sinks = cap.sinks && chance(rng, 0.3);
  return c;
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
  // Most draws fit a broad declaration; a narrow one (asm's q_len*G, 8-bit-needs-token-scales)
  // refuses many, so the loop gives up only after many empty draws.
  for (int attempt = 0; int(out.size()) < count && attempt < 100 * std::max(count, 1); ++attempt) {
    Case c = draw_case(k.info().capability, rng);
    c.seed = seed * 1000003u + uint64_t(out.size());
    if (!validate(c).empty()) continue;
    const Device dev = device_reading(c.kv_dtype);
    if (k.decline_reason(c, dev)) continue;
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
