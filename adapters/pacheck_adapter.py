"""Helpers for pacheck Python adapters (see adapters/README.md).

An adapter is a Python module that puts one kernel (or a family) under pacheck's test through the
Python worker (adapters/pacheck_worker.py). This module gives adapter authors what every adapter
needs and what is easy to get subtly wrong:

- the vocabulary of include/pacheck/kernel_abi.h as names (dtypes, layouts, scale modes), and
  `capability()` / `numerics()` that fill defaults and reject typos;
- `NotSupported`, the clean refusal (the worker answers status "not_supported");
- codecs: bf16/fp16 codes <-> float32 (round-to-nearest-even), fp8 e4m3fn / e4m3fnuz / e5m2 and
  int8 decode tables built from the bit fields, and saturating encoders;
- the paged map: block table -> physical (page, slot), then every layout's offset formula exactly
  as the header writes it, and the scale index of each scale mode (per-token scales by the
  *physical* slot);
- `Problem` / `Buffers`, the objects `run(problem, buffers)` receives;
- when torch is importable: `to_torch`, `TensorSpec` (strided device views of a flat cache) and
  copy-back into the output codes.

Only numpy is required. Everything works on numpy 1.24 and Python 3.8+.
"""
import math

import numpy as np

# The element codes (pacheck_codecs.py): the dtype names, sizes and poison, decode and encode.
from pacheck_codecs import (DTYPES, DTYPE_BYTES, POISON, _encode_fp8, _fp8_table,  # noqa: F401
                            decode, decode_table, encode, round_to)

# ---- vocabulary: names in the order of the C enums (the ids are the indices) -------------------
LAYOUTS = ("nhd", "hnd", "vllm", "shuffled", "mla_joint", "mla_split")
# The layouts of Hkv heads, each with a K and a V row of its own (the four of ABI 1.0) ...
HEAD_LAYOUTS = LAYOUTS[:4]
# ... and the MLA layouts (multi-head latent attention, DeepSeek / Kimi decode): one latent KV head
# per token (Hkv = 1) whose K row is Dv latent values then D - Dv rope values, and whose V row is
# the latent part of K (the same stored codes). See kv_offsets() and kv_segments().
#   mla_joint  one row of D per token: the K cache holds pages of [B][D], the V cache a
#              byte-identical copy (V element d of a token is its row's element d, d < Dv)
#   mla_split  the V cache is "ckv", pages of [B][Dv] (the latent values: V, and K's first Dv);
#              the K cache is "kpe", pages of [B][D - Dv] (the rope values: K's elements >= Dv)
MLA_LAYOUTS = LAYOUTS[4:]
MLA_HEAD_SIZE = 576    # D: kv_lora_rank 512 + qk_rope_head_dim 64 (DeepSeek V2/V3, Kimi K2)
MLA_HEAD_SIZE_V = 512  # Dv: kv_lora_rank
SCALE_MODES = ("none", "per_tensor", "per_head", "per_token_block_major", "per_token_head_major")
PAGE_TABLES = ("padded", "csr")  # ABI 1.2: how the page map is handed over
ROUNDINGS = ("fp32", "as_q") + DTYPES


class NotSupported(Exception):
    """Raise from run() (or supports()) to refuse a case cleanly: status "not_supported"."""


# ---- capability and numerics declarations ----------------------------------------------------
_CAP_DEFAULTS = {
    "q_dtypes": [], "kv_dtypes": [], "kv_layouts": [], "scale_modes": [], "head_sizes": [],
    "block_sizes": [], "max_gqa": 1, "gqa_tiles": [], "max_q_len": 1, "max_q_len_x_gqa": 0,
    "max_context": 0, "strided_pages": False, "custom_scale": False, "sliding_window": False,
    "logit_softcap": False, "alibi": False, "sinks": False, "lse": False,
    "partition_of_pages": False, "token_scales_for_8bit": False,
    # ABI 1.1: "scales apply to 8-bit caches only" (16-bit cases carry scale mode none), a split-K
    # partition fixed at this many tokens (0 = none), page_stride a multiple of this many elements.
    "scales_for_8bit_only": False, "fixed_partition": 0, "page_stride_align": 1,
    # ABI 1.2, the ragged batch: per-sequence q_len (cu_seqlens_q, each up to max_q_len);
    # sequences of context 0 (rows O = 0, LSE = -inf); the page tables read ("padded" and/or
    # "csr"); V / output head sizes Dv besides Dv == D; the LSE's base (0 natural, 2).
    "ragged": False, "empty_rows": False, "page_tables": ["padded"], "head_sizes_v": [],
    "lse_base": 0,
}
_CAP_NAMES = {"q_dtypes": DTYPES, "kv_dtypes": DTYPES, "kv_layouts": LAYOUTS,
              "scale_modes": SCALE_MODES, "page_tables": PAGE_TABLES}


def capability(**kw):
    """A full capability dict (the hello's vocabulary): missing keys get the most conservative
    default, unknown keys and unknown names raise ValueError, so a typo cannot silently widen or
    narrow what pacheck sends. max_gqa=0 (or None) means no limit, as PACHECK_NO_LIMIT in C."""
    if kw.get("max_gqa", 1) is None:
        kw = dict(kw, max_gqa=0)
    unknown = sorted(set(kw) - set(_CAP_DEFAULTS))
    if unknown:
        raise ValueError("unknown capability key(s): " + ", ".join(unknown))
    cap = {}
    for key, default in _CAP_DEFAULTS.items():
        v = kw.get(key, default)
        if isinstance(default, list):
            v = list(v)
            if key in _CAP_NAMES:
                bad = [n for n in v if n not in _CAP_NAMES[key]]
                if bad:
                    raise ValueError("capability %s: unknown name(s) %s" % (key, bad))
            else:
                v = [int(n) for n in v]
        elif isinstance(default, bool):
            v = bool(v)
        else:
            v = int(v)
        cap[key] = v
    if cap["lse_base"] not in (0, 2):
        raise ValueError("capability lse_base: %r is neither 0 (natural) nor 2" % cap["lse_base"])
    if not cap["page_tables"]:
        raise ValueError("capability page_tables: name at least one of %s" % (PAGE_TABLES,))
    return cap


def broad_capability(**overrides):
    """The declaration of a general kernel -- every dtype the suites draw on both vendors, every
    per-head layout (HEAD_LAYOUTS) and scale mode, head sizes 16..256 in steps of 16,
    power-of-two pages up to 256, G <= 64, q_len <= 8 and every option -- with `overrides` for
    what a kernel lacks. One home for the shape that the reference and torch adapters share. The
    ragged family (ABI 1.2) is not part of it: add ragged_capability() to declare it; nor are the
    MLA layouts (see mla_capability())."""
    base = dict(
        q_dtypes=["bf16", "fp16"],
        kv_dtypes=["bf16", "fp16", "fp8_e4m3fn", "fp8_e4m3fnuz", "int8"],
        kv_layouts=list(HEAD_LAYOUTS),
        scale_modes=list(SCALE_MODES),
        head_sizes=list(range(16, 257, 16)),
        block_sizes=[1 << i for i in range(9)],
        max_gqa=64,
        max_q_len=8,
        strided_pages=True, custom_scale=True, sliding_window=True, logit_softcap=True, alibi=True,
        sinks=True, lse=True,
    )
    base.update(overrides)
    return capability(**base)


def ragged_capability(max_q_len=1024, head_sizes_v=(64, 128), page_tables=PAGE_TABLES,
                      empty_rows=True, lse_base=0):
    """The keys that declare the ragged family (ABI 1.2), to merge into a capability:
    `pa.broad_capability(**pa.ragged_capability())`. A kernel that takes a ragged batch
    (q_len per sequence up to max_q_len; the uniform draws stay at q_len <= 16), empty
    sequences, both page tables and V head sizes Dv in head_sizes_v besides Dv == D."""
    return dict(ragged=True, max_q_len=int(max_q_len), head_sizes_v=list(head_sizes_v),
                page_tables=list(page_tables), empty_rows=bool(empty_rows), lse_base=int(lse_base))


def mla_capability(**overrides):
    """The declaration of an MLA decode kernel (kv_layouts mla_joint / mla_split): one latent KV
    head (Hkv = 1, so max_gqa is the query head count), D = 576 and Dv = 512, a per-tensor scale
    or none (K's and V's are the same one), an explicit softmax scale (MLA's is usually
    1/sqrt(192), not 1/sqrt(576): custom_scale), the ragged family with both page tables and
    empty sequences, the LSE in the natural base; `overrides` for what a kernel lacks or adds.
    A kernel that also takes the per-head layouts merges the lists itself (numpy_reference)."""
    base = dict(
        q_dtypes=["bf16", "fp16"],
        kv_dtypes=["bf16", "fp16", "fp8_e4m3fn", "fp8_e4m3fnuz"],
        kv_layouts=list(MLA_LAYOUTS),
        scale_modes=["none", "per_tensor"],
        head_sizes=[MLA_HEAD_SIZE],
        block_sizes=[1 << i for i in range(9)],
        max_gqa=128,
        strided_pages=True, custom_scale=True, lse=True,
    )
    base.update(ragged_capability(head_sizes_v=[MLA_HEAD_SIZE_V]))
    base.update(overrides)
    return capability(**base)


def numerics(p_round="fp32", qk_round="fp32", partial_round="fp32", v_round="fp32", pv_round="fp32",
             by_kv=None):
    """What the kernel rounds: "fp32" (not rounded), "as_q" (the case's q dtype) or a dtype.
    v_round: V after dequantization; pv_round: P.V products and their partial sums of up to 16
    terms. by_kv: numerics for particular KV dtypes, as in the C ABI's numerics_by_kv -- a list of
    (kv_dtypes, numerics(...)) pairs; the first naming a case's KV dtype governs it, e.g.
    numerics(by_kv=[(["fp8_e4m3fn"], numerics(qk_round="as_q", v_round="as_q"))])."""
    out = {"p_round": p_round, "qk_round": qk_round, "partial_round": partial_round,
           "v_round": v_round, "pv_round": pv_round}
    for k, v in out.items():
        if v not in ROUNDINGS:
            raise ValueError("numerics %s: %r is not one of %s" % (k, v, ROUNDINGS))
    if by_kv:
        entries = []
        for kv_dtypes, entry in by_kv:
            kv_dtypes = list(kv_dtypes)
            bad = [n for n in kv_dtypes if n not in DTYPES]
            if bad or not kv_dtypes:
                raise ValueError("numerics by_kv: kv_dtypes %r must be a non-empty list of %s" % (kv_dtypes, DTYPES))
            if "by_kv" in entry:
                raise ValueError("numerics by_kv: an entry may not have its own by_kv")
            entries.append(dict(entry, kv_dtypes=kv_dtypes))
        out["by_kv"] = entries
    return out


# ---- the problem and the buffers -------------------------------------------------------------
class Problem(dict):
    """pacheck_problem under its C field names; dtype/layout/scale names are strings.
    Reads as a dict (p["num_seqs"]) or as attributes (p.num_seqs)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name)

    @property
    def gqa(self):
        return self["num_q_heads"] // self["num_kv_heads"]

    @property
    def x(self):
        """Elements in 16 bytes of the KV dtype: the split factor of the vllm/shuffled layouts."""
        return 16 // DTYPE_BYTES[self["kv_dtype"]]

    @property
    def dense_page(self):
        """Elements of one dense K page: Hkv * B * D, or the K cache's row for the MLA layouts
        (mla_joint: D; mla_split: D - Dv, the rope part), see cache_row()."""
        return self["num_kv_heads"] * self["block_size"] * cache_row(self, "k")

    @property
    def mla(self):
        """The KV layout is an MLA one (mla_joint or mla_split): Hkv = 1, V = K's first Dv."""
        return self.get("kv_layout") in MLA_LAYOUTS

    # ABI 1.2 fields, read with their meaning when a problem leaves them out or 0 (one written by
    # hand, or by an earlier pacheck): Dv = D, T = S * q_len, V's page stride = K's.
    @property
    def head_size_v(self):
        """Dv: the V and output head size."""
        return int(self.get("head_size_v") or self["head_size"])

    @property
    def dense_page_v(self):
        """Elements of one dense V page: Hkv * B * Dv (mla_joint: Hkv * B * D, its rows being
        whole K rows)."""
        return self["num_kv_heads"] * self["block_size"] * cache_row(self, "v")

    @property
    def page_stride_v(self):
        """Elements between consecutive V pages (page_stride is K's)."""
        return int(self.get("page_stride_v") or self["page_stride"])

    @property
    def ragged(self):
        """A ragged batch: q_len is 0 and cu_seqlens_q gives each sequence's query rows."""
        return not self.get("q_len")

    @property
    def total_q(self):
        """T: the query rows of the launch (q [T, Hq, D], out [T, Hq, Dv], lse [T, Hq])."""
        return int(self.get("total_q") or self["num_seqs"] * self["q_len"])

    @property
    def max_q_len(self):
        return int(self.get("max_q_len") or self["q_len"])

    @property
    def csr(self):
        """The page table is CSR (kv_indptr / kv_indices / kv_last_page_len), not block_tables."""
        return self.get("page_table", "padded") == "csr"


_NAMED = {"q_dtype": DTYPES, "kv_dtype": DTYPES, "kv_layout": LAYOUTS, "scale_mode": SCALE_MODES,
          "page_table": PAGE_TABLES}


def make_problem(d):
    """Problem from a request's JSON object. Names are kept; integer ids (the C enums) are
    translated, so a parent that sends either form is understood."""
    p = Problem(d)
    for key, names in _NAMED.items():
        v = p.get(key)
        if isinstance(v, int) and 0 <= v < len(names):
            p[key] = names[v]
        elif v is not None and v not in names:
            raise ValueError("problem %s: unknown name %r" % (key, v))
    return p


class Buffers(object):
    """The launch's buffers as numpy views (zero-copy into the worker's shared memory file).

    q, out        codes of q_dtype: [S, q_len, Hq, D] and [S, q_len, Hq, Dv] for a uniform batch,
                  [T, Hq, D] and [T, Hq, Dv] for a ragged one (uint16 for bf16/fp16);
                  rows("q") is [T, Hq, D] either way (query token i of sequence s: row
                  cu_seqlens_q[s] + i)
    lse           float32 [S, q_len, Hq] (ragged: [T, Hq]), or None unless want_lse
    k_cache, v_cache  flat codes of kv_dtype (uint16 or uint8), the pool's element count
    k_scales, v_scales  float32, flat (see scale_index)
    block_tables  int32 [S, max_blocks_per_seq] (None with the CSR table);  context_lens  int32 [S]
    alibi_slopes, sinks  float32 [Hq], or None
    cu_seqlens_q  int32 [S + 1] (None from an earlier pacheck: uniform rows)
    kv_indptr [S + 1], kv_indices [num_kv_indices + garbage], kv_last_page_len [S]  int32, the CSR
                  page table (None with the padded one); page_table() reads either form
    workspace     uint8, or None
    """
    NAMES = ("q", "out", "lse", "k_cache", "v_cache", "k_scales", "v_scales", "block_tables",
             "context_lens", "alibi_slopes", "sinks", "cu_seqlens_q", "kv_indptr", "kv_indices",
             "kv_last_page_len", "workspace")

    def __init__(self, **views):
        for n in self.NAMES:
            setattr(self, n, views.pop(n, None))
        if views:
            raise TypeError("unknown buffer(s): " + ", ".join(sorted(views)))

    def rows(self, name):
        """q or out as [T, Hq, D or Dv], lse as [T, Hq]: the packed rows of any batch (a reshape,
        no copy); None when not given."""
        a = getattr(self, name)
        if a is None:
            return None
        if name == "lse":
            return a.reshape(-1, a.shape[-1])
        return a.reshape(-1, a.shape[-2], a.shape[-1])


def code_dtype(name):
    """numpy dtype that holds the codes of a pacheck dtype."""
    b = DTYPE_BYTES[name]
    return np.float32 if name == "fp32" else (np.uint16 if b == 2 else np.uint8)


# ---- the paged map ---------------------------------------------------------------------------
def is_torch(a):
    """Whether `a` is a torch tensor (a device buffer of a MEMORY = "device" kernel)."""
    return type(a).__module__.startswith("torch")


def host(a):
    """A numpy array of `a`: itself, or a torch tensor's copy in host memory (for the small
    arrays, such as block tables and context lengths, that a plan is made from)."""
    if a is None or not is_torch(a):
        return a
    return a.detach().cpu().numpy()


def _int64(a):
    """int64 numpy array of `a`, or a torch tensor as int64 on its own device: the offset
    formulas below are one text for the host gather and the device gather."""
    if is_torch(a):
        return a.long()
    return np.asarray(a, dtype=np.int64)


def kv_offsets(p, which, blk, h, tok, d):
    """Element offset of (blk, h, tok, d) in the K (which="k") or V ("v") cache, exactly the
    header's formulas. Arguments broadcast (numpy int64, or torch integer tensors on one device);
    blk is the *physical* page. For mla_split's K, the elements d < Dv are in the V cache and
    their offsets are offsets there (kv_segments() says which cache holds which elements)."""
    blk, h, tok, d = (_int64(a) for a in (blk, h, tok, d))
    H, B = p["num_kv_heads"], p["block_size"]
    # K has D and page_stride; V has Dv and page_stride_v (the same unless the problem says).
    if which == "k":
        D, stride = p["head_size"], int(p["page_stride"])
    else:
        D, stride = _head_size(p, "v"), _page_stride(p, "v")
    base = blk * stride
    layout = p["kv_layout"]
    if layout in MLA_LAYOUTS:
        # Pages of [B][row] per cache (nhd pages of one head), row = cache_row(p, cache). K
        # element d of mla_split is in the V cache (ckv) for d < Dv: the offset given is there.
        tok_row = tok * H + h
        if layout == "mla_joint" or which == "v":
            return base + tok_row * cache_row(p, which) + d
        Dv = _head_size(p, "v")
        latent = blk * _page_stride(p, "v") + tok_row * Dv + d
        rope = base + tok_row * (D - Dv) + (d - Dv)
        return _where(d < Dv, latent, rope)
    x = p.x
    if layout == "nhd":
        return base + (tok * H + h) * D + d
    if layout == "hnd":
        return base + (h * B + tok) * D + d
    if layout not in ("vllm", "shuffled"):
        raise ValueError("unknown layout %r" % layout)
    if which == "k":
        return base + h * D * B + (d // x) * B * x + tok * x + d % x
    if layout == "vllm":
        return base + h * D * B + d * B + tok
    return base + h * D * B + (tok // x) * D * x + d * x + tok % x


def _head_size(p, which):
    return p["head_size"] if which == "k" else int(p.get("head_size_v") or p["head_size"])


def _where(cond, a, b):
    """np.where, or torch.where when any argument is a torch tensor."""
    if any(is_torch(v) for v in (cond, a, b)):
        import torch
        return torch.where(cond, a, b)
    return np.where(cond, a, b)


def cache_row(p, which):
    """Elements of one token's row (per head) in the K (which="k") or V ("v") cache: D and Dv,
    except for the MLA layouts -- mla_joint: D in both caches (V reads the first Dv of a K row);
    mla_split: Dv in the V cache (ckv) and D - Dv in the K cache (kpe)."""
    layout = p.get("kv_layout")
    if layout == "mla_joint":
        return p["head_size"]
    if layout == "mla_split" and which == "k":
        return p["head_size"] - _head_size(p, "v")
    return _head_size(p, which)


def kv_segments(p, which):
    """[(cache, d0, d1), ...]: which cache ("k" or "v") holds the logical elements [d0, d1) of K
    (which="k") or V ("v") -- the cache of the same name, except mla_split's K, whose first Dv
    elements (the latent part) are the V cache's: [("v", 0, Dv), ("k", Dv, D)]. kv_offsets()
    gives each element's offset in the cache named here."""
    D = _head_size(p, which)
    if which == "k" and p.get("kv_layout") == "mla_split":
        Dv = _head_size(p, "v")
        return [("v", 0, Dv), ("k", Dv, D)]
    return [(which, 0, D)]


def _page_stride(p, which):
    if which == "k":
        return int(p["page_stride"])
    return int(p.get("page_stride_v") or p["page_stride"])


def gather_offsets(p, which, blk, tok):
    """Offsets [n, T, Hkv, D] (V: Dv) of the slots (blk, tok) [n, T] for every head and d
    (mla_split's K: elements [0, Dv) are offsets in the V cache; read_codes() reads them)."""
    H, D = p["num_kv_heads"], _head_size(p, which)
    h = np.arange(H, dtype=np.int64)[None, None, :, None]
    d = np.arange(D, dtype=np.int64)[None, None, None, :]
    return kv_offsets(p, which, blk[:, :, None, None], h, tok[:, :, None, None], d)


def scale_index(p, blk, h, tok):
    """Index into k_scales / v_scales of physical slot (blk, h, tok), per the scale mode.
    Per-token modes follow the physical page blk, never the logical token index. numpy or torch
    integer arguments, as kv_offsets."""
    blk, h, tok = (_int64(a) for a in (blk, h, tok))
    mode = p["scale_mode"]
    zero = blk * 0 + h * 0 + tok * 0  # the broadcast shape, in the arguments' own kind
    if mode in ("none", "per_tensor"):
        return zero
    if mode == "per_head":
        return zero + h
    H, B, NB = p["num_kv_heads"], p["block_size"], int(p["num_blocks"])
    if mode == "per_token_block_major":
        return (blk * H + h) * B + tok
    if mode == "per_token_head_major":
        return h * NB * B + blk * B + tok
    raise ValueError("unknown scale mode %r" % mode)


def scale_count(p):
    """Elements of k_scales (and of v_scales) for the problem's scale mode."""
    mode = p["scale_mode"]
    if mode in ("none", "per_tensor"):
        return 1
    if mode == "per_head":
        return p["num_kv_heads"]
    return int(p["num_blocks"]) * p["num_kv_heads"] * p["block_size"]


def gather_scales(p, scales, blk, tok):
    """float32 [n, T, Hkv]: the scale of every gathered slot ("none" gives 1)."""
    H = p["num_kv_heads"]
    if p["scale_mode"] == "none":
        return np.ones(blk.shape + (H,), dtype=np.float32)
    h = np.arange(H, dtype=np.int64)[None, None, :]
    return np.asarray(scales, dtype=np.float32)[scale_index(p, blk[:, :, None], h,
                                                            tok[:, :, None])]


def kv_buffers(buffers, which):
    """(cache, scales) of K (which="k") or V ("v"): the flat codes and their scales."""
    if which == "k":
        return buffers.k_cache, buffers.k_scales
    return buffers.v_cache, buffers.v_scales


def _caches(buffers):
    """{"k": K cache, "v": V cache} of Buffers, or of a dict holding "k" / "v" (or "k_cache" /
    "v_cache")."""
    if isinstance(buffers, dict):
        return {w: buffers[w] if w in buffers else buffers.get(w + "_cache") for w in "kv"}
    return {"k": buffers.k_cache, "v": buffers.v_cache}


def read_codes(p, buffers, which, blk, tok):
    """Codes [n, T, Hkv, D (V: Dv)] of K or V at the slots (blk, tok) [n, T], each element read
    from the cache that holds it (kv_segments(): mla_split's K reads its latent part from the V
    cache). numpy, from Buffers or {"k": ..., "v": ...}."""
    caches = _caches(buffers)
    off = gather_offsets(p, which, blk, tok)
    parts = [host(caches[c])[off[..., d0:d1]] for c, d0, d1 in kv_segments(p, which)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)


def gather_codes(p, buffers, which, blk, tok):
    """(codes [n, T, Hkv, D (V: Dv)], scales float32 [n, T, Hkv]) of K or V at the slots (blk, tok)
    [n, T]: what dequantize() (or dequantize_torch() on a device) turns into values."""
    _, scales = kv_buffers(buffers, which)
    return read_codes(p, buffers, which, blk, tok), gather_scales(p, scales, blk, tok)


def dequantize(p, codes, scales, dtype=np.float32):
    """Values of gathered KV codes [..., D] times their slots' scales [...] (gather_scales), in
    `dtype`: float32 rounds each product as an fp32 kernel does, float64 keeps it exact."""
    return decode(codes, p["kv_dtype"]).astype(dtype, copy=False) * scales[..., None]


def gather_kv(p, buffers, which, seqs=None, pad_to=None, dtype=np.float32):
    """Dequantized logical K or V: (`dtype` [n, T, Hkv, D (V: Dv)], valid [n, T]).
    The one-call path for adapters that want dense tensors (pads as token_slots does; either
    page table)."""
    blk, tok, valid = token_slots(p, buffers, None, seqs, pad_to)
    codes, scales = gather_codes(p, buffers, which, blk, tok)
    return dequantize(p, codes, scales, dtype), valid


def visible(p, ctx, T, q_len=None):
    """bool [q_len, T]: key t visible to query token i of a sequence with context ctx (causal
    among the q_len new tokens, and the sliding window when set). q_len: the sequence's (a
    ragged batch), else the problem's. A sequence of context 0 sees nothing."""
    L = int(p["q_len"] if q_len is None else q_len)
    pos = ctx - L + np.arange(L)[:, None]
    t = np.arange(T)[None, :]
    ok = t <= pos
    if p["sliding_window"] > 0:
        ok &= t > pos - p["sliding_window"]
    return ok


def query_positions(p, ctx, q_len=None):
    """int [q_len]: the positions p = ctx - q_len + i of the query tokens (q_len: the
    sequence's in a ragged batch, else the problem's)."""
    L = int(p["q_len"] if q_len is None else q_len)
    return ctx - L + np.arange(L)


def scatter_codes(p, cache, which, blk, tok, codes):
    """Writes codes [n, T, Hkv, D (V: Dv)] at the slots (blk, tok) [n, T]: the inverse of a gather, for
    tests and for adapters that stage a cache in another layout. `cache`: the flat cache of
    `which`, or Buffers / {"k": ..., "v": ...} when K's elements live in both caches
    (mla_split's K, see kv_segments())."""
    off = gather_offsets(p, which, blk, tok)
    segs = kv_segments(p, which)
    if not isinstance(cache, (dict, Buffers)):
        if any(c != which for c, _, _ in segs):
            raise ValueError("%s's %s spans both caches: pass {'k': ..., 'v': ...}"
                             % (p["kv_layout"], which.upper()))
        cache[off] = codes
        return
    caches = _caches(cache)
    for c, d0, d1 in segs:
        caches[c][off[..., d0:d1]] = codes[..., d0:d1]


def pool_elements(p, which="k"):
    """Elements the K (which="k") or V pool spans: (NB - 1) * page_stride + Hkv * B * D
    (V: page_stride_v and Dv; the MLA layouts: their cache rows, cache_row())."""
    nb = int(p["num_blocks"])
    dense = p["num_kv_heads"] * p["block_size"] * cache_row(p, which)
    return 0 if nb <= 0 else (nb - 1) * _page_stride(p, which) + dense


def default_scale(p):
    return 1.0 / math.sqrt(p["head_size"])


def softmax_scale(p):
    """The logits' scale: the problem's softmax_scale, or 1/sqrt(D) where it is 0 / unset."""
    return float(p["softmax_scale"] or default_scale(p))


# The batch of a launch (pacheck_batch.py), under this module's names: pa.sequences, pa.contexts, ...
from pacheck_batch import (_is_csr, Sequence, contexts, cu_seqlens, page_table, q_lens,  # noqa: E402,F401
                           row_positions, sequences, token_slots)

# The device and torch half (pacheck_torch.py), under this module's names: adapters call
# pa.to_torch, pa.gather_kv_torch, pa.store_codes, ... as before.
from pacheck_torch import (_STORAGE, _TORCH_NAMES, DType, TensorSpec,  # noqa: E402,F401
                           default_device, dequantize_torch, gather_kv_torch, gather_torch,
                           host_tensor, materialise, native_fp8, store_codes, store_float32,
                           to_torch, torch_dtype)
