#include "bench/bench.hpp"

#include <algorithm>
#include <cstring>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <limits>
#include <map>
#include <optional>

#include "inputs/inputs.hpp"
#include "core/models.hpp"
#include "core/prng.hpp"
#include "reference/attention.hpp"
#include "testbed/testbed.hpp"

namespace pa::bench {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The KV tokens a query of sequence s can see: the whole context, or the window (plus the other
// new tokens of a multi-token step, which see a window shifted by one each).
int64_t visible_tokens(const Case& c, int32_t ctx) {
  if (c.sliding_window <= 0) return ctx;
  return std::min<int64_t>(ctx, int64_t(c.sliding_window) + c.q_len - 1);
}

// The timed call of a point: block tables of random page placement and full contexts; the
// caches, q and scales are left for the device to fill (a 512 x 32k point does not fit a host).
struct DeviceCall {
  std::vector<int32_t> tables, lens, cu_seqlens_q;
  std::vector<float> alibi, sinks;
  KernelCall call;
};
DeviceCall device_call(const Case& c) {
  DeviceCall d;
  d.call.problem = problem_of(c);
  const int32_t mb = c.max_blocks_per_seq();
  const int64_t pool = c.pool_blocks();
  Rng rng(c.seed, Stream::kPlacement);
  d.tables.assign(size_t(int64_t(c.num_seqs) * mb), 0);
  // A random permutation of the pool, dealt out page by page: every sequence's pages scattered.
  std::vector<int32_t> perm(static_cast<size_t>(pool));
  for (int64_t i = 0; i < pool; ++i) perm[size_t(i)] = int32_t(i);
  for (int64_t i = pool - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[size_t(rng.uniform_int(0, i))]);
  size_t next = 0;
  for (int32_t s = 0; s < c.num_seqs; ++s)
    for (int32_t j = 0; j < mb; ++j) d.tables[size_t(s) * size_t(mb) + size_t(j)] = perm[next++ % perm.size()];
  d.lens = c.context_lens;
  if (c.alibi)
    for (int32_t h = 0; h < c.num_q_heads; ++h) d.alibi.push_back(float(alibi_slope(h, c.num_q_heads)));
  if (c.sinks) d.sinks.assign(size_t(c.num_q_heads), 1.0f);
  d.call.block_tables = d.tables;
  d.call.context_lens = d.lens;
  for (int32_t s = 0; s <= c.num_seqs; ++s) d.cu_seqlens_q.push_back(int32_t(c.q_start(s)));
  d.call.cu_seqlens_q = d.cu_seqlens_q;
  d.call.alibi_slopes = d.alibi;
  d.call.sinks = d.sinks;
  return d;
}

// The configuration of a point without its concurrency: the correctness check runs once per
// (kernel, configuration), on one sequence of the point's context (the kernel's code path does not
// depend on how many sequences share a launch; the oracle's cost does).
std::string config_key(const Case& c) {
  Case one = c;
  one.num_seqs = 1;
  one.context_lens = {c.max_context()};
  one.name.clear();
  return vars(one);
}

KernelPoint summarize(const std::string& kernel, const Timing& t, const char* timing) {
  KernelPoint k;
  k.kernel = kernel;
  k.timing = timing;
  if (!t.error.empty() || t.samples_ms.empty()) {
    k.status = Status::Fail;
    k.message = "timing failed: " + (t.error.empty() ? std::string("no samples") : t.error);
    return k;
  }
  std::vector<double> s = t.samples_ms;
  std::sort(s.begin(), s.end());
  const auto q = [&](double f) { return s[std::min(s.size() - 1, size_t(f * double(s.size() - 1) + 0.5))]; };
  k.median_ms = q(0.5);
  k.spread_ms = q(0.75) - q(0.25);
  k.min_ms = s.front();
  k.repetitions = int(s.size());
  return k;
}

// The point's case in a form `k` declares: as written, else with another declared layout and,
// for 8-bit caches, another declared scale mode. nullopt when no form fits.
std::optional<Case> in_own_form(const Kernel& k, const Case& c, const Device& dev) {
  if (!k.decline_reason(c, dev)) return c;
  const Capability& cap = k.info().capability;
  for (int l = 0; l < kKvLayoutCount; ++l) {
    if (!(cap.layouts & (1u << l))) continue;
    for (int m = 0; m < 5; ++m) {
      if (!(cap.scales & (1u << m))) continue;
      Case v = c;
      v.kv_layout = KvLayout(l);
      v.kv_scale = ScaleMode(m);
      if (!is_8bit(c.kv_dtype) && m != int(ScaleMode::none) && (cap.scales & 1u)) continue;  // keep 16-bit unscaled
      if (!validate(v).empty()) continue;
      if (!k.decline_reason(v, dev)) return v;
    }
  }
  return std::nullopt;
}

}  // namespace

int64_t bytes_needed(const Case& c) {
  const int64_t eb = dtype_bytes(c.kv_dtype);
  int64_t kv = 0, pages = 0;
  // K and V rows of every visible token; a latent (MLA) cache stores one row of D per token,
  // V being its first Dv values (the latent bytes model: tokens x 576 x dtype bytes).
  const int64_t kv_row = is_mla(c.kv_layout) ? c.head_size : c.head_size + c.dv();
  for (int32_t ctx : c.context_lens) {
    const int64_t t = visible_tokens(c, ctx);
    kv += t * c.num_kv_heads * kv_row * eb;
    if (is_per_token(c.kv_scale)) kv += 2 * t * c.num_kv_heads * 4;
    pages += (t + c.block_size - 1) / c.block_size + 1;
  }
  const int64_t rows = c.total_q() * c.num_q_heads;
  return kv + rows * (c.head_size + c.dv()) * dtype_bytes(c.q_dtype) + rows * 4 + pages * 4;
}

std::vector<Point> sweep(const std::string& name, const Device& dev, const SweepOptions& o) {
  std::vector<Point> out;
  if (name == "quick") {  // three small points the host twins time in seconds (CI)
    const ModelConfig& m = model_configs()[3];  // qwen3_235b_tp8: 8/1/128
    for (const auto& [S, ctx] : std::vector<std::pair<int32_t, int32_t>>{{1, 256}, {4, 256}, {4, 1024}}) {
      Case c;
      apply_model(m, c);
      c.name = m.name;
      c.num_seqs = S;
      c.context_lens.assign(size_t(S), ctx);
      c.kv_layout = KvLayout::shuffled;
      c.seed = uint64_t(S * 100003 + ctx);
      out.push_back({m.name, c});
    }
    return out;
  }
  if (name == "mla") {
    // A DeepSeek-V3-sized MLA decode: 128 query heads over one latent head (K 576 = 512 + 64 rope,
    // V the latent 512), the model's softmax scale 1/sqrt(192), pages of 64, bf16 and the device's
    // fp8 with a per-tensor scale, at 4k and 32k contexts (every concurrency: MLA's KV is small).
    for (DType kv : {DType::bf16, dev.native_fp8})
      for (int32_t ctx : {4096, 32768})
        for (int32_t S : {1, 4, 16, 64, 128, 256}) {
          Case c;
          c.name = "deepseek_v3_mla";
          c.num_seqs = S;
          c.num_q_heads = 128;
          c.num_kv_heads = 1;
          c.head_size = 576;
          c.head_size_v = 512;
          c.softmax_scale = 0.07216878364870322;
          c.block_size = 64;
          c.context_lens.assign(size_t(S), ctx);
          c.kv_layout = KvLayout::mla_joint;
          c.kv_dtype = kv;
          c.kv_scale = is_8bit(kv) ? ScaleMode::per_tensor : ScaleMode::none;
          c.seed = uint64_t(S) * 1000003u + uint64_t(ctx);
          out.push_back({c.name, c});
        }
    return out;
  }
  if (name != "models") throw InputError("--sweep " + name + ": unknown sweep (models, quick, mla)");
  for (const ModelConfig& m : model_configs()) {
    if (!o.models.empty() && std::find(o.models.begin(), o.models.end(), m.name) == o.models.end()) continue;
    for (DType kv : {DType::bf16, dev.native_fp8})
      for (int32_t ctx : o.contexts)
        for (int32_t S : o.concurrency) {
          if (int64_t(S) * ctx > o.max_tokens) continue;
          Case c;
          apply_model(m, c);
          c.name = m.name;
          c.num_seqs = S;
          c.context_lens.assign(size_t(S), ctx);
          c.kv_dtype = kv;
          // The layout each family of kernels reads: the shuffled paths take the head configs they
          // support, the rest (options, head sizes) is v1's nhd; a kernel that reads neither declines.
          c.kv_layout = m.needs_v1() ? KvLayout::nhd : KvLayout::shuffled;
          c.kv_scale = is_8bit(kv) ? ScaleMode::per_token_block_major : ScaleMode::none;
          if (m.needs_v1() && is_8bit(kv)) c.kv_scale = ScaleMode::per_tensor;
          c.seed = uint64_t(S) * 1000003u + uint64_t(ctx);
          out.push_back({m.name, c});
        }
  }
  return out;
}

std::vector<PointResult> run(const std::vector<Point>& points, const std::vector<KernelPtr>& kernels, const Device& dev,
                             const Options& o, const std::function<void(const PointResult&, size_t, size_t)>& progress) {
  std::vector<PointResult> results;
  std::map<std::pair<std::string, std::string>, std::string> checked;  // (kernel, config) -> "" ok / why not
  // The one-sequence check of each (kernel, config): its case and what the kernel returned before
  // the timing loop, to compare with what it returns after it.
  struct Before {
    Case one;
    KernelOutput out;
  };
  std::map<std::pair<std::string, std::string>, Before> before;
  for (size_t n = 0; n < points.size(); ++n) {
    const Point& pt = points[n];
    const Case& c = pt.c;
    PointResult r;
    r.point = pt;
    r.bytes = bytes_needed(c);
    const Decision d = select_path(dev, c, kernels);
    r.chosen = d.path.value_or("");
    // The real inputs, made only when some kernel needs host-side buffers (host or isolated kernels).
    std::optional<Inputs> in;
    std::optional<PhysicalKv> kv;
    std::optional<DeviceCall> dcall;  // built for the first device kernel timed on the point as written
    bool stream_measured = false;
    for (const KernelPtr& k : kernels) {
      KernelPoint kp;
      kp.kernel = k->name();
      // The layout and scale form are the kernel's contract, not the workload: a kernel that
      // declines the point as written is timed on the same shape in a form it declares.
      const std::optional<Case> own = in_own_form(*k, c, dev);
      if (!own) {
        kp.status = Status::NotSupported;
        kp.message = *k->decline_reason(c, dev);
        r.kernels.push_back(kp);
        continue;
      }
      const Case& c = *own;
      const auto key = std::make_pair(k->name(), config_key(c));
      if (o.check) {  // correct first: a wrong kernel is reported wrong, not fast
        if (!checked.count(key)) {
          Case one = c;
          one.num_seqs = 1;
          one.context_lens = {c.max_context()};
          const Inputs ci = make_inputs(one);
          const PhysicalKv ck = pack(ci);
          KernelOutput first = k->run(make_call(ci, ck), dev);
          const PathRecord rec = judge(*k, first, one, reference_attention(ci));
          checked[key] = rec.status == Status::Ok ? "" : std::string(to_string(rec.status)) + " " + rec.metric + ": " + rec.message;
          if (rec.status == Status::Ok) before[key] = {one, std::move(first)};
        }
        if (!checked[key].empty()) {
          kp.status = Status::Fail;
          kp.message = "wrong, not timed (checked on one sequence of this configuration): " + checked[key];
          r.kernels.push_back(kp);
          continue;
        }
      }
      const auto* abi = dynamic_cast<const AbiKernel*>(k.get());
      const bool device_fill = abi && k->info().memory == Memory::device;
      const bool same_form = c.kv_layout == pt.c.kv_layout && c.kv_scale == pt.c.kv_scale;
      Timing t;
      if (device_fill) {
        if (same_form && !dcall) dcall = device_call(pt.c);
        t = time_kernel(*k, same_form ? dcall->call : device_call(c).call, dev, o.timing);
        if (!stream_measured) {
          std::string err;
          r.stream_gbs = stream_read_gbs(size_t(r.bytes), o.timing, &err);
          stream_measured = true;
        }
      } else {
        if (!same_form) in.reset();
        if (!in) {
          // Host-side inputs: only for points a host can hold (the quick sweep, small points).
          const int64_t host_bytes = 4 * r.bytes;
          if (host_bytes > o.max_host_bytes) {
            kp.status = Status::Skipped;
            kp.message = "needs about " + std::to_string(host_bytes) + " bytes of host inputs, above the limit of " +
                         std::to_string(o.max_host_bytes) + " (device kernels in process are timed on device-filled inputs)";
            r.kernels.push_back(kp);
            continue;
          }
          in = make_inputs(c);
          kv = pack(*in);
        }
        t = time_kernel(*k, make_call(*in, *kv), dev, o.timing);
      }
      kp = summarize(k->name(), t, device_fill ? "gpu" : "host");
      // A kernel must answer the same after its timing loop as before it (one that changes once
      // it has been timed -- a cache, a state, a fallback -- would pass the check and not the run).
      if (o.check && kp.status == Status::Ok && before.count(key)) {
        const Before& b = before.at(key);
        const Inputs ci = make_inputs(b.one);
        const KernelOutput after = k->run(make_call(ci, pack(ci)), dev);
        const bool same = after.status == Status::Ok && after.out.size() == b.out.out.size() &&
                          std::memcmp(after.out.data(), b.out.out.data(), after.out.size() * sizeof(float)) == 0;
        if (!same) {
          const PathRecord rec = judge(*k, after, b.one, reference_attention(ci));
          if (rec.status != Status::Ok || k->info().capability.deterministic) {
            kp.status = Status::Fail;
            kp.message = "changed after its timing loop: the one-sequence check of this configuration " +
                         (rec.status != Status::Ok ? "now fails (" + rec.metric + ": " + rec.message + ")"
                                                   : std::string("gives other bits (the kernel declares DETERMINISTIC)"));
          }
        }
      }
      r.kernels.push_back(kp);
    }
    // Regret compares the dispatcher's pick with the fastest kernel it could have picked: the
    // kernels its rule routes among (a plug-in is compared by its own row, not as an alternative).
    std::vector<std::string> candidates;
    // Only kernels that take the point as written (the cache has one layout): a kernel timed on
    // the shape in another layout is not an alternative the dispatcher had.
    for (const KernelPtr& k : routable(kernels, aiter_routing()))
      if (!k->decline_reason(c, dev)) candidates.push_back(k->name());
    double best = std::numeric_limits<double>::infinity(), chosen_ms = kNaN;
    for (const KernelPoint& kp : r.kernels)
      if (kp.status == Status::Ok &&
          std::find(candidates.begin(), candidates.end(), kp.kernel) != candidates.end()) {
        if (kp.median_ms < best) {
          best = kp.median_ms;
          r.fastest = kp.kernel;
        }
        if (kp.kernel == r.chosen) chosen_ms = kp.median_ms;
      }
    r.regret = r.fastest.empty() || std::isnan(chosen_ms) ? kNaN : chosen_ms / best - 1.0;
    results.push_back(r);
    if (progress) progress(results.back(), n + 1, points.size());
  }
  return results;
}

std::vector<report::BenchRecord> records(const std::vector<PointResult>& results) {
  std::vector<report::BenchRecord> out;
  for (const PointResult& r : results)
    for (const KernelPoint& k : r.kernels) {
      if (k.status != Status::Ok) continue;
      report::BenchRecord b;
      b.kernel = k.kernel;
      b.model = r.point.model;
      b.kv_dtype = to_string(r.point.c.kv_dtype);
      b.num_seqs = r.point.c.num_seqs;
      b.context = r.point.c.max_context();
      b.median_ms = k.median_ms;
      b.spread_ms = k.spread_ms;
      b.bytes = r.bytes;
      b.bandwidth_gbs = double(r.bytes) / (k.median_ms * 1e6);
      b.fraction_of_stream = r.stream_gbs > 0 ? b.bandwidth_gbs / r.stream_gbs : 0;
      b.regret = r.regret;
      b.chosen = r.chosen;
      b.fastest = r.fastest;
      b.timing = k.timing;
      out.push_back(b);
    }
  return out;
}

void print_table(std::ostream& os, const std::vector<PointResult>& results) {
  os << std::left << std::setw(18) << "model" << std::setw(14) << "kv" << std::right << std::setw(5) << "S" << std::setw(7)
     << "ctx" << "  kernel  median_ms  spread   GB/s  of_stream  stream_GB/s  chosen  regret\n";
  for (const PointResult& r : results)
    for (const KernelPoint& k : r.kernels) {
      if (k.status == Status::NotSupported) continue;
      os << std::left << std::setw(18) << r.point.model << std::setw(14) << to_string(r.point.c.kv_dtype) << std::right
         << std::setw(5) << r.point.c.num_seqs << std::setw(7) << r.point.c.max_context() << "  " << std::left
         << std::setw(6) << k.kernel << std::right;
      if (k.status != Status::Ok) {
        os << "  " << to_string(k.status) << ": " << k.message.substr(0, 100) << "\n";
        continue;
      }
      const double gbs = double(r.bytes) / (k.median_ms * 1e6);
      os << std::fixed << std::setprecision(4) << std::setw(10) << k.median_ms << std::setw(8) << k.spread_ms
         << std::setprecision(1) << std::setw(7) << gbs << std::setw(10);
      if (r.stream_gbs > 0) os << std::setprecision(3) << gbs / r.stream_gbs; else os << "host";
      os << std::setw(13) << std::setprecision(0) << r.stream_gbs;
      os << std::setw(8) << (r.chosen.empty() ? "-" : r.chosen) << std::setw(8);
      if (std::isnan(r.regret)) os << "-"; else os << std::setprecision(3) << r.regret;
      os << "\n";
    }
}

}  // namespace pa::bench
