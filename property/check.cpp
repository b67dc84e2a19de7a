#include "property/check.hpp"

#include <algorithm>
#include <chrono>
#include <iomanip>

#include "core/prng.hpp"
#include "core/text.hpp"
#include "property/properties.hpp"

namespace pa::prop {

namespace {

using Factory = PropertySpec (*)(const PropertyContext&);
struct Entry {
  const char* name;
  Factory make;
};
// The order properties run and print in: the plain comparison first, then the relations, then
// the flow around the kernel.
const std::vector<Entry>& table() {
  static const std::vector<Entry> t = {
      {"reference", reference_property}, {"relocation", relocation_property}, {"kv_scale", kv_scale_property},
      {"split", split_property},         {"gqa", gqa_property},               {"poison", poison_property},
      {"repeat", repeat_property},       {"batch", batch_property},           {"extend", extend_property},
      {"zero_q", zero_q_property},       {"plan", plan_property},             {"graph", graph_property},
      {"refusal", refusal_property},     {"writer", writer_property},         {"dispatcher", dispatcher_property},
  };
  return t;
}

std::vector<const Entry*> selected(const std::vector<std::string>& names) {
  for (const std::string& n : names)
    if (std::none_of(table().begin(), table().end(), [&](const Entry& e) { return n == e.name; }))
      throw InputError("--properties: unknown property '" + n + "' (known: " + join(property_names(), ", ") + ")");
  std::vector<const Entry*> out;
  for (const Entry& e : table())
    if (names.empty() || std::find(names.begin(), names.end(), e.name) != names.end()) out.push_back(&e);
  return out;
}

}  // namespace

// ---- PropertyContext -----------------------------------------------------------------------------

bool PropertyContext::per_case_device() const { return every_device_model && kernel->info().memory == Memory::host; }

Device PropertyContext::device_for(const Case& c) const {
  return per_case_device() ? device_reading(c.kv_dtype) : device;
}

std::vector<Device> PropertyContext::draw_devices() const {
  if (!per_case_device()) return {device};
  // One model per fp8 flavour, the default first: the same models device_for() judges on.
  std::vector<Device> out;
  for (const Device& d : {device_reading(DType::bf16), device_reading(DType::fp8_e4m3fn)})
    if (std::none_of(out.begin(), out.end(), [&](const Device& o) { return o.native_fp8 == d.native_fp8; }))
      out.push_back(d);
  return out;
}

std::vector<Device> PropertyContext::route_devices() const {
  return per_case_device() ? device_models() : std::vector<Device>{device};
}

rc::Gen<Case> PropertyContext::inside() const {
  std::vector<rc::Gen<Case>> gens;
  for (const Device& d : draw_devices()) gens.push_back(gen::case_in(*kernel, d, limits));
  if (gens.size() == 1) return gens[0];
  // The device index is one more shrinkable choice, the default model first.
  return rc::gen::exec([gens]() {
    const size_t i = *rc::gen::resize(100, rc::gen::inRange<size_t>(0, gens.size()));
    return *gens[i];
  });
}

// ---- check_kernel --------------------------------------------------------------------------------

std::vector<std::string> property_names() {
  std::vector<std::string> out;
  for (const Entry& e : table()) out.push_back(e.name);
  return out;
}

uint64_t fresh_seed() {
  static int salt = 0;  // its address and a count differ between processes and calls
  const auto now = uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count());
  const uint64_t s = mix64(now ^ mix64(uint64_t(reinterpret_cast<uintptr_t>(&salt)) + uint64_t(++salt)));
  return s ? s : 1;
}

uint64_t property_seed(uint64_t seed, const std::string& name) {
  const uint64_t s = mix64(seed ^ fnv1a(name));
  return s ? s : 1;
}

bool CheckReport::passed() const {
  bool any = false;
  for (const PropertyResult& r : results) {
    if (!r.applicable) continue;
    if (!r.passed) return false;
    any = true;
  }
  return any;
}

CheckReport check_kernel(const KernelPtr& k, const std::vector<KernelPtr>& all_kernels, const CheckOptions& o) {
  const std::vector<const Entry*> which = selected(o.properties);
  CheckReport rep;
  rep.kernel = k->name();
  rep.seed = o.seed ? o.seed : fresh_seed();
  rep.cases = o.cases;
  PropertyContext ctx{k, all_kernels, o.device, o.every_device_model, o.limits};
  if (std::none_of(ctx.all.begin(), ctx.all.end(), [&](const KernelPtr& q) { return q == k; })) ctx.all.push_back(k);
  rep.device = ctx.per_case_device() ? "every device model" : o.device.name;

  std::optional<std::string> cannot_run;
  std::string why;
  if (k->info().memory == Memory::device && !gpu_available(&why))
    cannot_run = "a device-memory kernel, and no GPU here: " + why;

  RunSettings s;
  s.cases = o.cases;
  s.kernel = k->name();
  s.kernel_spec = o.kernel_spec;
  s.capture = o.capture;
  s.capture_dir = o.capture_dir;
  s.device_of = [ctx](const Case& c) { return ctx.device_for(c); };
  for (const Entry* e : which) {
    if (o.stop && o.stop()) {
      rep.interrupted = true;
      break;
    }
    const PropertySpec spec = e->make(ctx);
    PropertyResult r;
    if (cannot_run || spec.not_applicable) {
      r.name = e->name;
      r.applicable = false;
      r.message = cannot_run ? *cannot_run : *spec.not_applicable;
    } else {
      s.seed = property_seed(rep.seed, e->name);
      s.property = e->name;
      r = check_cases(k->name() + "/" + e->name, o.only ? rc::gen::just(*o.only) : spec.cases, spec.holds, s);
      r.name = e->name;
    }
    rep.results.push_back(std::move(r));
  }
  return rep;
}

void print_check_report(std::ostream& os, const CheckReport& r) {
  os << "pacheck check " << r.kernel << ": " << r.cases << " cases per property, device " << r.device << ", seed "
     << r.seed << "\n";
  int failed = 0, held = 0, na = 0;
  for (const PropertyResult& p : r.results) {
    os << "  " << std::left << std::setw(11) << p.name << " ";
    if (!p.applicable) {
      ++na;
      os << "n/a     " << p.message << "\n";
      continue;
    }
    if (p.passed) {
      ++held;
      os << "passed  " << p.cases << " cases";
      if (p.discarded) os << ", " << p.discarded << " draws discarded";
      if (!p.message.empty()) os << "; " << p.message;
      os << "\n";
      continue;
    }
    ++failed;
    os << "FAILED  after " << p.cases << " cases (seed " << p.seed << ")\n";
    if (p.minimal) os << "      minimal case: " << vars(*p.minimal) << "\n";
    os << "      " << p.message << "\n";
    if (!p.replay.empty()) os << "      replay: " << p.replay << "\n";
    if (!p.captured_file.empty()) os << "      saved:  " << p.captured_file << "\n";
  }
  os << r.kernel << ": " << (r.passed() ? "passed" : failed ? "FAILED" : "nothing checked") << " (" << held << " held, " << failed << " failed, " << na
     << " not applicable; --seed " << r.seed << " reproduces this run)\n";
}

}  // namespace pa::prop
