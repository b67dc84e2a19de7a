#include "core/layout.hpp"

#include <cstdio>

namespace pa {

namespace {
constexpr const char* kLayoutNames[] = {"nhd", "hnd", "vllm", "shuffled", "mla_joint", "mla_split"};
constexpr const char* kScaleNames[] = {"none", "per_tensor", "per_head", "per_token_block_major",
                                       "per_token_head_major"};
int32_t log2_exact(int32_t v) {
  int32_t r = 0;
  while ((1 << r) < v) ++r;
  return r;
}
}  // namespace

const char* to_string(KvLayout l) { return kLayoutNames[int(l)]; }
std::optional<KvLayout> parse_layout(std::string_view s) {
  for (int i = 0; i < kKvLayoutCount; ++i)
    if (s == kLayoutNames[i]) return KvLayout(i);
  return std::nullopt;
}
namespace {
constexpr const char* kPageTableNames[] = {"padded", "csr"};
}
const char* to_string(PageTable t) { return kPageTableNames[int(t)]; }
namespace {
constexpr const char* kTablePadNames[] = {"garbage", "minus_one", "zero"};
}
const char* to_string(TablePad t) { return kTablePadNames[int(t)]; }
std::optional<TablePad> parse_table_pad(std::string_view s) {
  for (int i = 0; i < 3; ++i)
    if (s == kTablePadNames[i]) return TablePad(i);
  return std::nullopt;
}
std::optional<PageTable> parse_page_table(std::string_view s) {
  for (int i = 0; i < kPageTableCount; ++i)
    if (s == kPageTableNames[i]) return PageTable(i);
  return std::nullopt;
}

const char* to_string(ScaleMode m) { return kScaleNames[int(m)]; }
std::optional<ScaleMode> parse_scale_mode(std::string_view s) {
  for (int i = 0; i < 5; ++i)
    if (s == kScaleNames[i]) return ScaleMode(i);
  return std::nullopt;
}

std::optional<std::string> layout_error(KvLayout kind, int32_t heads, int32_t block,
                                        int32_t head_size, int32_t elem_bytes) {
  if (heads < 1 || block < 1 || head_size < 1)
    return "layout sizes must be positive (H=" + std::to_string(heads) + ", B=" +
           std::to_string(block) + ", D=" + std::to_string(head_size) + ")";
  if (elem_bytes != 1 && elem_bytes != 2)
    return "KV elements must be 1 or 2 bytes, got " + std::to_string(elem_bytes);
  if (is_mla(kind) && heads != 1)
    return std::string(to_string(kind)) + " layout holds one latent KV head per token, but H=" + std::to_string(heads);
  const int32_t x = 16 / elem_bytes;
  if ((kind == KvLayout::vllm || kind == KvLayout::shuffled) && head_size % x != 0)
    return std::string(to_string(kind)) + " layout splits head_size by x=" + std::to_string(x) +
           ", but head_size=" + std::to_string(head_size) + " is not a multiple of it";
  if (kind == KvLayout::shuffled && block % x != 0)
    return "shuffled layout splits block_size by x=" + std::to_string(x) + ", but block_size=" +
           std::to_string(block) + " is not a multiple of it";
  return std::nullopt;
}

PageLayout make_page_layout(KvLayout kind, KvTensor tensor, int32_t H, int32_t B, int32_t D,
                            int32_t elem_bytes, int64_t page_stride) {
  PageLayout L;
  L.kind = kind;
  L.tensor = tensor;
  L.heads = H;
  L.block = B;
  L.head_size = D;
  L.page_stride = page_stride > 0 ? page_stride : int64_t(H) * B * D;
  const int32_t x = 16 / elem_bytes;
  const int32_t lx = log2_exact(x);
  // Unsplit modes use shift 0 / mask 0: (i >> 0) * s_hi + (i & 0) * s_lo == i * s_hi.
  switch (kind) {
    case KvLayout::nhd:  // [NB, B, H, D]
    case KvLayout::mla_joint:  // [NB, B, 1, D]: a cache of latent + rope rows
    case KvLayout::mla_split:  // [NB, B, 1, Dv] (ckv) and [NB, B, 1, D - Dv] (kpe)
      L.s_h = D;
      L.s_thi = int64_t(H) * D;
      L.s_dhi = 1;
      break;
    case KvLayout::hnd:  // [NB, H, B, D]
      L.s_h = int64_t(B) * D;
      L.s_thi = D;
      L.s_dhi = 1;
      break;
    case KvLayout::vllm:
    case KvLayout::shuffled:
      L.s_h = int64_t(D) * B;
      if (tensor == KvTensor::key) {  // [NB, H, D/x, B, x]
        L.d_shift = lx;
        L.d_mask = uint32_t(x - 1);
        L.s_dhi = int64_t(B) * x;
        L.s_dlo = 1;
        L.s_thi = x;
      } else if (kind == KvLayout::vllm) {  // V: [NB, H, D, B]
        L.s_dhi = B;
        L.s_thi = 1;
      } else {  // shuffled V: [NB, H, B/x, D, x]
        L.t_shift = lx;
        L.t_mask = uint32_t(x - 1);
        L.s_thi = int64_t(D) * x;
        L.s_tlo = 1;
        L.s_dhi = x;
      }
      break;
  }
  return L;
}

std::string PageLayout::to_string() const {
  auto mode = [](int64_t extent, int32_t shift, uint32_t mask, int64_t hi, int64_t lo) {
    char buf[96];
    if (mask == 0)
      std::snprintf(buf, sizeof buf, "%lld:%lld", (long long)extent, (long long)hi);
    else
      std::snprintf(buf, sizeof buf, "(%u,%lld):(%lld,%lld)", mask + 1,
                    (long long)(extent >> shift), (long long)lo, (long long)hi);
    return std::string(buf);
  };
  std::string s = std::string(pa::to_string(kind)) + (tensor == KvTensor::key ? ".K" : ".V");
  s += " blk:" + std::to_string(page_stride);
  s += " h:" + std::to_string(heads) + ":" + std::to_string(s_h);
  s += " tok:" + mode(block, t_shift, t_mask, s_thi, s_tlo);
  s += " d:" + mode(head_size, d_shift, d_mask, s_dhi, s_dlo);
  return s;
}

std::string ScaleLayout::to_string() const {
  std::string s = pa::to_string(mode);
  if (mode == ScaleMode::per_head) s += " [" + std::to_string(heads) + "]";
  if (mode == ScaleMode::per_token_block_major)
    s += " [" + std::to_string(num_blocks) + "," + std::to_string(heads) + "," +
         std::to_string(block) + "]";
  if (mode == ScaleMode::per_token_head_major)
    s += " [" + std::to_string(heads) + "," + std::to_string(num_blocks * block) + "]";
  return s;
}

}  // namespace pa
