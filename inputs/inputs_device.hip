// make_device_inputs: a case's inputs generated on the GPU, byte-identical to make_inputs + pack.
//
// The split (inputs/inputs_device.hpp): the host runs make_inputs' own code for everything small
// (detail::make_input_parts: Q, slopes, sinks, page placement and block tables, outlier gains,
// V means) and for the scale rules (detail::shared_scales, set_apart, first_row_scale); the device
// draws the K/V rows with the element definitions of inputs/input_draws.hpp, which make_inputs'
// host schedule calls too. Four kernels, in stream order on stream 0 of the calling thread:
//   fill_kernel      poisons the physical caches (codec::poison_code) and their scale slots (NaN
//                    per token, else 1), as pack starts;
//   head_amax_kernel per-tensor / per-head 8-bit modes only: each head's amax over all rows,
//                    downloaded so that the host turns it into the shared scales;
//   generate_kernel  the logical codes [T, Hkv, D] and scales [T, Hkv] of K and V, a warp per row
//                    (per-token modes: the row's amax is a warp reduction, then the scale draw);
//   pack_kernel      every valid token's codes and scales placed through the case's PageLayout,
//                    ScaleLayout and block table (the same PA_HOST_DEVICE offset functions pack
//                    calls).
// Bit-identity with the host rests on: IEEE +, *, / and conversions without FMA contraction (this
// file is built with nvcc --fmad=false or HIP -ffp-contract=off), max being exact in any order,
// and codes stored little-endian (store_code's order; NVIDIA and AMD GPUs are little-endian).
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/device_pool.hpp"
#include "core/gpu_runtime.hpp"
#include "inputs/input_draws.hpp"
#include "inputs/inputs_device.hpp"
#include "inputs/inputs_parts.hpp"

namespace pa {

namespace {

// Threads per block: a multiple of every warp size (32 and 64).
constexpr int kThreads = 256;
// Blocks are capped (grid-stride loops take the rest); enough to fill any GPU many times over.
constexpr int64_t kMaxBlocks = int64_t(1) << 16;

// Blocks for `warps` warps of work. The host does not know the device's warp size here, so it
// sizes for 32-wide warps (the most blocks); every kernel loops over its work in strides of the
// warps actually launched, so the result never depends on the sizing.
unsigned blocks_for_warps(int64_t warps, int64_t at_least = 1) {
  const int64_t per_block = kThreads / 32;
  return unsigned(std::min(kMaxBlocks, std::max(at_least, (warps + per_block - 1) / per_block)));
}

__device__ inline int lane() { return int(threadIdx.x % gpu::kWarpSize); }
__device__ inline int64_t warp_index() {
  return (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / gpu::kWarpSize;
}
__device__ inline int64_t warps_launched() { return int64_t(gridDim.x) * blockDim.x / gpu::kWarpSize; }

// ---- fill: the poisoned pool -----------------------------------------------------------------

// Up to four byte buffers, each filled with a repeating little-endian 4-byte pattern (blockIdx.y
// picks the buffer): a 2-byte code twice, a 1-byte code four times, or a float's bits.
struct FillArgs {
  uint8_t* buf[4];
  int64_t bytes[4];
  uint32_t pattern[4];
};

__global__ void __launch_bounds__(kThreads) fill_kernel(FillArgs a) {
  uint8_t* const buf = a.buf[blockIdx.y];
  const int64_t bytes = a.bytes[blockIdx.y];
  const uint32_t p = a.pattern[blockIdx.y];
  const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t n16 = bytes / 16;  // hipMalloc's pointers are 256-byte aligned
  const uint4 v = make_uint4(p, p, p, p);
  for (int64_t i = tid; i < n16; i += stride) reinterpret_cast<uint4*>(buf)[i] = v;
  for (int64_t i = n16 * 16 + tid; i < bytes; i += stride) buf[i] = uint8_t(p >> (8 * (i % 4)));
}

// ---- the rows of K and V -------------------------------------------------------------------------

// Each head's amax over all rows, K's in out[0, H) and V's in out[H, 2H) (blockIdx.y: 0 K, 1 V),
// as the bits of nonnegative doubles, whose unsigned order is their numeric order, so atomicMax
// on the bits is a max of the values. A warp keeps one head (warps beyond a multiple of H idle)
// and issues one atomic.
struct AmaxArgs {
  draws::KvRows rows[2];
  int64_t row_count;
  unsigned long long* out;
};

__global__ void __launch_bounds__(kThreads) head_amax_kernel(AmaxArgs a) {
  const draws::KvRows src = blockIdx.y == 0 ? a.rows[0] : a.rows[1];
  const int64_t H = src.heads, D = src.head_size;
  const int64_t usable = warps_launched() - warps_launched() % H;
  const int64_t w = warp_index();
  if (w >= usable) return;  // whole warps: no lane of a returning warp joins a shuffle below
  const int64_t h = w % H;
  double amax = 0;
  for (int64_t r = w; r < a.row_count; r += usable) {  // r = t * H + h for t = w / H, ...
    Rng normals = src.row_start(r);
    const double f = draws::token_factor(normals);
    for (int32_t d = lane(); d < D; d += gpu::kWarpSize) amax = draws::abs_max(amax, src.element(normals, f, r, d));
  }
  amax = gpu::warp_max(amax);
  if (lane() == 0) atomicMax(a.out + blockIdx.y * H + h, static_cast<unsigned long long>(bit_cast<uint64_t>(amax)));
}

// One tensor's generation (K or V).
struct TensorGen {
  draws::KvRows rows;
  draws::ScaleDraw draw;
  const float* head_scales;  // [H]: every row's scale in the modes without per-token scales
  double row0_scale;         // per-token modes: unit 0's scale (unit 1 reads it)
  uint16_t* codes;           // [rows, D]
  float* scales;             // [rows]
};
struct GenArgs {
  TensorGen t[2];  // blockIdx.y: 0 K, 1 V
  int64_t row_count;
  bool per_token;
};

// Elements per lane a row keeps in registers; a row wider than kCached warps (D > 256 on 32-wide
// warps) draws the rest twice, once for the amax and once for the codes.
constexpr int kCached = 8;

// A warp per row r: its D elements (draws::KvRows::element), its scale (per-token: the warp's
// amax, then draws::ScaleDraw of unit r; else the head's), its codes (draws::encode_scaled_as).
template <DType T>
__global__ void __launch_bounds__(kThreads) generate_kernel(GenArgs a) {
  const TensorGen g = a.t[blockIdx.y];
  const int32_t D = g.rows.head_size, H = g.rows.heads;
  const int ln = lane();
  for (int64_t r = warp_index(); r < a.row_count; r += warps_launched()) {  // warp-uniform
    Rng normals = g.rows.row_start(r);
    const double f = draws::token_factor(normals);
    double x[kCached];
    double amax = 0;
#pragma unroll
    for (int i = 0; i < kCached; ++i) {
      const int32_t d = ln + i * gpu::kWarpSize;
      x[i] = d < D ? g.rows.element(normals, f, r, d) : 0.0;
      amax = draws::abs_max(amax, x[i]);
    }
    float s;
    if (a.per_token) {
      for (int32_t d = ln + kCached * gpu::kWarpSize; d < D; d += gpu::kWarpSize)
        amax = draws::abs_max(amax, g.rows.element(normals, f, r, d));
      s = float(g.draw(gpu::warp_max(amax), uint64_t(r), g.row0_scale));
    } else {
      s = g.head_scales[r % H];
    }
    if (ln == 0) g.scales[r] = s;
    uint16_t* const out = g.codes + r * D;
#pragma unroll
    for (int i = 0; i < kCached; ++i) {
      const int32_t d = ln + i * gpu::kWarpSize;
      if (d < D) out[d] = draws::encode_scaled_as<T>(x[i], double(s));
    }
    for (int32_t d = ln + kCached * gpu::kWarpSize; d < D; d += gpu::kWarpSize)
      out[d] = draws::encode_scaled_as<T>(g.rows.element(normals, f, r, d), double(s));
  }
}

// ---- pack ----------------------------------------------------------------------------------------

struct PackTensor {
  PageLayout layout;
  const uint16_t* codes;  // logical [rows, code_row]; the cache holds columns [col0, col0 + its head size)
  int32_t code_row, col0;
  const float* scales;    // logical [rows]
  uint8_t* cache;         // physical, elem_bytes per element
  float* cache_scales;    // scale_layout.size()
};
struct PackArgs {
  PackTensor t[2];  // blockIdx.y: 0 K, 1 V
  ScaleLayout scale_layout;
  const int32_t* block_tables;
  int32_t max_blocks_per_seq;
  const int64_t* token_base;  // [S + 1]
  int32_t num_seqs;
  int64_t row_count;
  int32_t heads, elem_bytes;  // each tensor's head size is its layout's (V's may differ from K's)
};

// A warp per logical row r = (token, head): the token's sequence by bisection of token_base, its
// page and slot through the block table, then pack's writes. Every pool page is the valid page of
// at most one table entry (make_input_parts' placement; checked on the host), so no two rows write
// the same element and the order of the writes does not matter.
__global__ void __launch_bounds__(kThreads) pack_kernel(PackArgs a) {
  const PackTensor p = a.t[blockIdx.y];
  const int32_t H = a.heads, D = p.layout.head_size;
  const PagedLayout paged{p.layout, a.block_tables, a.max_blocks_per_seq};
  const ScaleMode mode = a.scale_layout.mode;
  for (int64_t r = warp_index(); r < a.row_count; r += warps_launched()) {
    const int64_t token = r / H;
    const int32_t h = int32_t(r % H);
    int32_t lo = 0, hi = a.num_seqs;  // token_base[lo] <= token < token_base[hi]
    while (hi - lo > 1) {
      const int32_t mid = (lo + hi) / 2;
      if (a.token_base[mid] <= token) lo = mid;
      else hi = mid;
    }
    const int32_t t = int32_t(token - a.token_base[lo]);
    const int32_t blk = paged.block_of(lo, t), tok = paged.slot_of(t);
    const uint16_t* const src = p.codes + r * p.code_row + p.col0;
    for (int32_t d = lane(); d < D; d += gpu::kWarpSize) {
      const int64_t e = p.layout(blk, h, tok, d);
      if (a.elem_bytes == 2) reinterpret_cast<uint16_t*>(p.cache)[e] = src[d];  // little-endian
      else p.cache[e] = uint8_t(src[d]);
    }
    // Per-token scales follow the physical slot. The shared slots of the other modes hold the
    // value every row of the head (or tensor) carries: written once, from token 0 of sequence 0.
    const bool writes_scale = is_per_token(mode) || (r < H && (mode == ScaleMode::per_head || h == 0));
    if (lane() == 0 && writes_scale) p.cache_scales[a.scale_layout(blk, h, tok)] = p.scales[r];
  }
}

// ---- host helpers --------------------------------------------------------------------------------

void check_launch(const char* kernel) { gpu::check(hipGetLastError(), kernel); }

// Host-to-device copy on stream 0 without waiting: the source must stay alive until the stream
// is synchronised (make_device_inputs keeps every source until its final synchronisation).
void upload_async(DeviceBuffer& b, const void* src, size_t bytes) {
  if (bytes) PA_GPU_CHECK(hipMemcpyAsync(b.data(), src, bytes, hipMemcpyHostToDevice, 0));
}
template <class T>
DeviceBuffer device_copy_async(const std::vector<T>& v) {
  DeviceBuffer b(v.size() * sizeof(T));
  upload_async(b, v.data(), v.size() * sizeof(T));
  return b;
}

// Q, block tables, context lengths, token_base, slopes and sinks into d: what make_device_inputs
// and upload_inputs both upload. @post in's vectors must live until stream 0 is synchronised
void upload_small_async(const Inputs& in, DeviceInputs& d) {
  d.q_codes = device_copy_async(in.q_codes);
  d.q = device_copy_async(in.q);
  d.block_tables = device_copy_async(in.block_tables);
  d.context_lens = device_copy_async(in.context_lens);
  d.token_base = device_copy_async(in.k.token_base);
  d.alibi_slopes = device_copy_async(in.alibi_slopes);
  d.sinks = device_copy_async(in.sinks);
  d.cu_seqlens_q = device_copy_async(in.cu_seqlens_q);
  d.kv_indptr = device_copy_async(in.kv_indptr);
  d.kv_indices = device_copy_async(in.kv_indices);
  d.kv_last_page_len = device_copy_async(in.kv_last_page_len);
}

template <DType T>
void launch_generate(const GenArgs& a, unsigned blocks, unsigned tensors) {
  hipLaunchKernelGGL(generate_kernel<T>, dim3(blocks, tensors), dim3(kThreads), 0, 0, a);
}

// A latent (MLA) cache's V: each row's first Dv codes of K, under K's scale. A warp per row.
__global__ void __launch_bounds__(kThreads) latent_prefix_kernel(const uint16_t* k_codes, const float* k_scales,
                                                                  uint16_t* v_codes, float* v_scales, int64_t rows,
                                                                  int32_t D, int32_t Dv) {
  for (int64_t r = warp_index(); r < rows; r += warps_launched()) {
    for (int32_t d = lane(); d < Dv; d += gpu::kWarpSize) v_codes[r * Dv + d] = k_codes[r * D + d];
    if (lane() == 0) v_scales[r] = k_scales[r];
  }
}

}  // namespace

// ---- DeviceBuffer --------------------------------------------------------------------------------

// From the device pool (core/device_pool.hpp): a run makes and drops thousands of these.
DeviceBuffer::DeviceBuffer(size_t bytes) : n_(bytes) {
  if (bytes == 0) return;  // an empty buffer owns nothing
  p_ = device_take(bytes, "DeviceBuffer");
}
namespace {
// Gives a block back once the calling thread's stream no longer uses it (its work may still run:
// an exception can leave a launch or an async copy in flight).
void release(void* p) noexcept {
  if (!p) return;
  (void)hipStreamSynchronize(0);  // a destructor cannot throw; an error resurfaces on the next call
  device_give(p);
}
}  // namespace
DeviceBuffer::~DeviceBuffer() { release(p_); }
DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), n_(o.n_) { o.p_ = nullptr, o.n_ = 0; }
DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release(p_);
    p_ = o.p_, n_ = o.n_;
    o.p_ = nullptr, o.n_ = 0;
  }
  return *this;
}
void DeviceBuffer::upload(const void* src, size_t bytes) {
  if (bytes > n_) throw std::runtime_error("DeviceBuffer::upload: " + std::to_string(bytes) +
                                           " bytes into a buffer of " + std::to_string(n_));
  if (bytes == 0) return;
  PA_GPU_CHECK(hipMemcpyAsync(p_, src, bytes, hipMemcpyHostToDevice, 0));
  PA_GPU_CHECK(hipStreamSynchronize(0));
}
void DeviceBuffer::download(void* dst, size_t bytes) const {
  if (bytes > n_) throw std::runtime_error("DeviceBuffer::download: " + std::to_string(bytes) +
                                           " bytes from a buffer of " + std::to_string(n_));
  download_staged(dst, p_, bytes);
}

// ---- the entry points ----------------------------------------------------------------------------

bool device_inputs_available(std::string* why) {
  int n = 0;
  const hipError_t e = hipGetDeviceCount(&n);
  if (e != hipSuccess || n == 0) {
    if (why) *why = std::string("built for ") + PA_GPU_VENDOR + " but no GPU is usable: " +
                    (e != hipSuccess ? hipGetErrorString(e) : "no device");
    return false;
  }
  return true;
}

int64_t device_memory_available() {
  size_t free_bytes = 0, total = 0;
  if (hipMemGetInfo(&free_bytes, &total) != hipSuccess) {
    (void)hipGetLastError();
    return -1;
  }
  return int64_t(free_bytes) + device_pool_stats().cached_bytes;  // the pool's cache is free to a new need
}

DeviceInputs make_device_inputs(const Case& c) { return make_device_inputs(ValidCase::checked(c)); }

DeviceInputs make_device_inputs(const ValidCase& vc) {
  const Case& c = vc;
  // A latent (MLA) cache draws K only; V is K's prefix under K's scale (make_inputs' rule).
  const bool latent = is_mla(c.kv_layout);
  const unsigned tensors = latent ? 1 : 2;
  detail::InputParts parts = detail::make_input_parts(vc);
  const Inputs& in = parts.in;
  // The parallel scatter of pack_kernel is pack's sequential one only when no pool page is the
  // valid page of two table entries. make_input_parts' tables never do that (a prefix of a
  // permutation); this guards the assumption should the placement ever change.
  if (in.num_blocks > 0 && detail::page_owners(in).empty())
    throw std::logic_error("make_device_inputs: a pool page is the valid page of two table entries, or none");
  const int32_t H = c.num_kv_heads, D = c.head_size, Dv = c.dv(), eb = dtype_bytes(c.kv_dtype);
  const int64_t rows = parts.rows_count();
  const bool per_token = is_per_token(c.kv_scale);

  DeviceInputs d;
  d.k_layout = key_layout(c);
  d.v_layout = value_layout(c);
  d.scale_layout = scale_layout(c);
  const int64_t elems = d.k_layout.cosize(in.num_blocks), v_elems = d.v_layout.cosize(in.num_blocks);
  const int64_t scale_slots = d.scale_layout.size();

  // The small inputs (their host vectors live until the final synchronisation, in parts).
  upload_small_async(in, d);
  const DeviceBuffer gain = device_copy_async(parts.k_gain), mean = device_copy_async(parts.v_mean);
  const draws::KvRows krows = parts.rows(KvTensor::key, nullptr, gain.as<const double>());
  const draws::KvRows vrows = parts.rows(KvTensor::value, mean.as<const double>(), nullptr);

  d.k_codes = DeviceBuffer(size_t(rows * D) * sizeof(uint16_t));
  d.v_codes = DeviceBuffer(size_t(rows * Dv) * sizeof(uint16_t));
  d.k_scales = DeviceBuffer(size_t(rows) * sizeof(float));
  d.v_scales = DeviceBuffer(size_t(rows) * sizeof(float));
  d.k_cache = DeviceBuffer(size_t(elems * eb));
  d.v_cache = DeviceBuffer(size_t(v_elems * eb));
  d.k_cache_scales = DeviceBuffer(size_t(scale_slots) * sizeof(float));
  d.v_cache_scales = DeviceBuffer(size_t(scale_slots) * sizeof(float));

  // The pool as pack starts it: every element poisoned, scale slots NaN (per token) or 1.
  {
    const uint32_t code = codec::poison_code(c.kv_dtype);
    const uint32_t code_pattern = eb == 2 ? (code & 0xFFFFu) * 0x00010001u : (code & 0xFFu) * 0x01010101u;
    const uint32_t scale_pattern = per_token ? 0x7FC00000u : 0x3F800000u;  // quiet NaN, 1.0f
    FillArgs f{};
    uint8_t* const bufs[4] = {d.k_cache.as<uint8_t>(), d.v_cache.as<uint8_t>(), d.k_cache_scales.as<uint8_t>(),
                              d.v_cache_scales.as<uint8_t>()};
    const int64_t bytes[4] = {elems * eb, v_elems * eb, scale_slots * 4, scale_slots * 4};
    for (int i = 0; i < 4; ++i) {
      f.buf[i] = bufs[i];
      f.bytes[i] = bytes[i];
      f.pattern[i] = i < 2 ? code_pattern : scale_pattern;
    }
    const unsigned blocks = unsigned(std::min<int64_t>(kMaxBlocks, std::max<int64_t>(1, std::max(elems, v_elems) * eb / (16 * kThreads))));
    hipLaunchKernelGGL(fill_kernel, dim3(blocks, 4), dim3(kThreads), 0, 0, f);
    check_launch("fill_kernel");
  }

  // Scales shared by a tensor or head: the host's rules, from the heads' amax (8-bit only: the
  // 16-bit scales ignore it, and make_inputs does not draw the rows for them either).
  std::vector<float> k_head(size_t(H), 1.0f), v_head(size_t(H), 1.0f);
  if (c.kv_scale == ScaleMode::per_tensor || c.kv_scale == ScaleMode::per_head) {
    std::vector<double> kamax(size_t(H), 0.0), vamax(size_t(H), 0.0);
    if (is_8bit(c.kv_dtype)) {
      DeviceBuffer bits(size_t(2 * H) * sizeof(unsigned long long));
      PA_GPU_CHECK(hipMemsetAsync(bits.data(), 0, bits.size(), 0));  // the bits of +0.0
      AmaxArgs a{{krows, vrows}, rows, bits.as<unsigned long long>()};
      // At least H warps of the widest warp size (64), so every head has a warp.
      const unsigned blocks = blocks_for_warps(rows, (int64_t(H) * 64 + kThreads - 1) / kThreads);
      hipLaunchKernelGGL(head_amax_kernel, dim3(blocks, tensors), dim3(kThreads), 0, 0, a);
      check_launch("head_amax_kernel");
      const std::vector<uint64_t> b = bits.to_vector<uint64_t>(size_t(2 * H));
      for (int32_t h = 0; h < H; ++h) {
        kamax[size_t(h)] = bit_cast<double>(b[size_t(h)]);
        vamax[size_t(h)] = bit_cast<double>(b[size_t(H + h)]);
      }
    }
    std::vector<double> kshared = detail::shared_scales(c.kv_scale, parts.k_draw, kamax);
    if (!latent) {  // an MLA cache has one scale for its one tensor
      std::vector<double> vshared = detail::shared_scales(c.kv_scale, parts.v_draw, vamax);
      detail::set_apart(kshared, vshared);
      v_head = detail::head_row_scales(c.kv_scale, vshared, H);
    }
    k_head = detail::head_row_scales(c.kv_scale, kshared, H);
  }
  const DeviceBuffer k_head_d = device_copy_async(k_head), v_head_d = device_copy_async(v_head);

  {
    GenArgs a{};
    a.t[0] = {krows, parts.k_draw, k_head_d.as<const float>(),
              per_token ? detail::first_row_scale(parts.rows(KvTensor::key), parts.k_draw, rows) : 0.0,
              d.k_codes.as<uint16_t>(), d.k_scales.as<float>()};
    a.t[1] = {vrows, parts.v_draw, v_head_d.as<const float>(),
              per_token ? detail::first_row_scale(parts.rows(KvTensor::value), parts.v_draw, rows) : 0.0,
              d.v_codes.as<uint16_t>(), d.v_scales.as<float>()};
    a.row_count = rows;
    a.per_token = per_token;
    const unsigned blocks = blocks_for_warps(rows);
    switch (c.kv_dtype) {
      case DType::bf16: launch_generate<DType::bf16>(a, blocks, tensors); break;
      case DType::fp16: launch_generate<DType::fp16>(a, blocks, tensors); break;
      case DType::fp8_e4m3fn: launch_generate<DType::fp8_e4m3fn>(a, blocks, tensors); break;
      case DType::fp8_e4m3fnuz: launch_generate<DType::fp8_e4m3fnuz>(a, blocks, tensors); break;
      case DType::fp8_e5m2: launch_generate<DType::fp8_e5m2>(a, blocks, tensors); break;
      case DType::int8: launch_generate<DType::int8>(a, blocks, tensors); break;
      default: throw std::logic_error(std::string("make_device_inputs: no KV cache of dtype ") + to_string(c.kv_dtype));
    }
    check_launch("generate_kernel");
    if (latent) {
      hipLaunchKernelGGL(latent_prefix_kernel, dim3(blocks), dim3(kThreads), 0, 0, d.k_codes.as<const uint16_t>(),
                         d.k_scales.as<const float>(), d.v_codes.as<uint16_t>(), d.v_scales.as<float>(), rows, D, Dv);
      check_launch("latent_prefix_kernel");
    }
  }

  {
    PackArgs a{};
    a.t[0] = {d.k_layout, d.k_codes.as<const uint16_t>(), D, k_from_v(c.kv_layout, Dv), d.k_scales.as<const float>(),
              d.k_cache.as<uint8_t>(), d.k_cache_scales.as<float>()};
    a.t[1] = {d.v_layout, d.v_codes.as<const uint16_t>(), Dv, 0, d.v_scales.as<const float>(), d.v_cache.as<uint8_t>(),
              d.v_cache_scales.as<float>()};
    a.scale_layout = d.scale_layout;
    a.block_tables = d.block_tables.as<const int32_t>();
    a.max_blocks_per_seq = in.max_blocks_per_seq;
    a.token_base = d.token_base.as<const int64_t>();
    a.num_seqs = c.num_seqs;
    a.row_count = rows;
    a.heads = H;
    a.elem_bytes = eb;
    // mla_joint's V cache is the K cache's bytes, scales included (V = K's prefix under K's scale):
    // K is packed, then copied.
    const bool joint = c.kv_layout == KvLayout::mla_joint;
    hipLaunchKernelGGL(pack_kernel, dim3(blocks_for_warps(rows), joint ? 1 : 2), dim3(kThreads), 0, 0, a);
    check_launch("pack_kernel");
    if (joint) {
      if (d.v_cache.size() != d.k_cache.size())
        throw std::logic_error("make_device_inputs: an mla_joint V cache is not the K cache's size");
      PA_GPU_CHECK(hipMemcpyAsync(d.v_cache.data(), d.k_cache.data(), d.k_cache.size(), hipMemcpyDeviceToDevice, 0));
      PA_GPU_CHECK(hipMemcpyAsync(d.v_cache_scales.data(), d.k_cache_scales.data(), d.k_cache_scales.size(),
                                  hipMemcpyDeviceToDevice, 0));
    }
  }
  // Every upload's source (parts, k_head, v_head) and every buffer used above is alive until here.
  PA_GPU_CHECK(hipStreamSynchronize(0));
  d.host = std::move(parts.in);
  return d;
}

DeviceInputs upload_inputs(const Inputs& in) {
  DeviceInputs d;
  const PhysicalKv kv = pack(in);
  d.k_layout = kv.k_layout;
  d.v_layout = kv.v_layout;
  d.scale_layout = kv.scale_layout;
  d.k_codes = device_copy_async(in.k.codes);
  d.k_scales = device_copy_async(in.k.scales);
  d.v_codes = device_copy_async(in.v.codes);
  d.v_scales = device_copy_async(in.v.scales);
  d.k_cache = device_copy_async(kv.k_cache);
  d.v_cache = device_copy_async(kv.v_cache);
  d.k_cache_scales = device_copy_async(kv.k_scales);
  d.v_cache_scales = device_copy_async(kv.v_scales);
  upload_small_async(in, d);
  PA_GPU_CHECK(hipStreamSynchronize(0));  // kv and in are sources until here
  d.host = in;
  for (LogicalKv* t : {&d.host.k, &d.host.v}) {
    t->codes.clear();
    t->scales.clear();
  }
  return d;
}

Inputs download_inputs(const DeviceInputs& d) {
  Inputs in = d.host;
  in.q_codes = d.q_codes.to_vector<uint16_t>(d.host.q_codes.size());
  in.q = d.q.to_vector<float>(d.host.q.size());
  in.block_tables = d.block_tables.to_vector<int32_t>(d.host.block_tables.size());
  in.context_lens = d.context_lens.to_vector<int32_t>(d.host.context_lens.size());
  in.alibi_slopes = d.alibi_slopes.to_vector<float>(d.host.alibi_slopes.size());
  in.sinks = d.sinks.to_vector<float>(d.host.sinks.size());
  in.cu_seqlens_q = d.cu_seqlens_q.to_vector<int32_t>(d.host.cu_seqlens_q.size());
  in.kv_indptr = d.kv_indptr.to_vector<int32_t>(d.host.kv_indptr.size());
  in.kv_indices = d.kv_indices.to_vector<int32_t>(d.host.kv_indices.size());
  in.kv_last_page_len = d.kv_last_page_len.to_vector<int32_t>(d.host.kv_last_page_len.size());
  const std::vector<int64_t> base = d.token_base.to_vector<int64_t>(d.host.k.token_base.size());
  const int64_t rows = d.host.k.token_base.back() * d.host.k.heads;
  in.k.token_base = base;
  in.v.token_base = base;
  in.k.codes = d.k_codes.to_vector<uint16_t>(size_t(rows * d.host.k.head_size));
  in.k.scales = d.k_scales.to_vector<float>(size_t(rows));
  in.v.codes = d.v_codes.to_vector<uint16_t>(size_t(rows * d.host.v.head_size));
  in.v.scales = d.v_scales.to_vector<float>(size_t(rows));
  return in;
}

PhysicalKv download_physical(const DeviceInputs& d) {
  PhysicalKv p;
  p.k_layout = d.k_layout;
  p.v_layout = d.v_layout;
  p.scale_layout = d.scale_layout;
  p.k_cache = d.k_cache.to_vector<uint8_t>(d.k_cache.size());
  p.v_cache = d.v_cache.to_vector<uint8_t>(d.v_cache.size());
  p.k_scales = d.k_cache_scales.to_vector<float>(d.k_cache_scales.size() / sizeof(float));
  p.v_scales = d.v_cache_scales.to_vector<float>(d.v_cache_scales.size() / sizeof(float));
  return p;
}

}  // namespace pa
