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

# ---- vocabulary: names in the order of the C enums (the ids are the indices) -------------------
DTYPES = ("bf16", "fp16", "fp8_e4m3fn", "fp8_e4m3fnuz", "int8", "fp32", "fp8_e5m2")
LAYOUTS = ("nhd", "hnd", "vllm", "shuffled")
SCALE_MODES = ("none", "per_tensor", "per_head", "per_token_block_major", "per_token_head_major")
ROUNDINGS = ("fp32", "as_q") + DTYPES
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp8_e4m3fn": 1, "fp8_e4m3fnuz": 1, "int8": 1, "fp32": 4,
               "fp8_e5m2": 1}
# Poison codes (never to be read): a kernel that reads a free slot produces NaN.
POISON = {"bf16": 0x7FC0, "fp16": 0x7E00, "fp8_e4m3fn": 0x7F, "fp8_e4m3fnuz": 0x80, "int8": 0x80,
          "fp8_e5m2": 0x7F}


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
}
_CAP_NAMES = {"q_dtypes": DTYPES, "kv_dtypes": DTYPES, "kv_layouts": LAYOUTS,
              "scale_modes": SCALE_MODES}


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
    return cap


def broad_capability(**overrides):
    """The declaration of a general kernel -- every dtype the suites draw on both vendors, every
    layout and scale mode, head sizes 16..256 in steps of 16, power-of-two pages up to 256,
    G <= 64, q_len <= 8 and every option -- with `overrides` for what a kernel lacks. One home
    for the shape that the reference and torch adapters share."""
    base = dict(
        q_dtypes=["bf16", "fp16"],
        kv_dtypes=["bf16", "fp16", "fp8_e4m3fn", "fp8_e4m3fnuz", "int8"],
        kv_layouts=list(LAYOUTS),
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
        return self["num_kv_heads"] * self["block_size"] * self["head_size"]


_NAMED = {"q_dtype": DTYPES, "kv_dtype": DTYPES, "kv_layout": LAYOUTS, "scale_mode": SCALE_MODES}


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

    q, out        codes of q_dtype, [S, q_len, Hq, D] (uint16 for bf16/fp16)
    lse           float32 [S, q_len, Hq], or None unless want_lse
    k_cache, v_cache  flat codes of kv_dtype (uint16 or uint8), the pool's element count
    k_scales, v_scales  float32, flat (see scale_index)
    block_tables  int32 [S, max_blocks_per_seq];  context_lens  int32 [S]
    alibi_slopes, sinks  float32 [Hq], or None
    workspace     uint8, or None
    """
    NAMES = ("q", "out", "lse", "k_cache", "v_cache", "k_scales", "v_scales", "block_tables",
             "context_lens", "alibi_slopes", "sinks", "workspace")

    def __init__(self, **views):
        for n in self.NAMES:
            setattr(self, n, views.pop(n, None))
        if views:
            raise TypeError("unknown buffer(s): " + ", ".join(sorted(views)))


def code_dtype(name):
    """numpy dtype that holds the codes of a pacheck dtype."""
    b = DTYPE_BYTES[name]
    return np.float32 if name == "fp32" else (np.uint16 if b == 2 else np.uint8)


# ---- codecs ----------------------------------------------------------------------------------
def _fp8_table(exp_bits, man_bits, bias, kind):
    """Decode table of an 8-bit float from its bit fields. kind: "fn" (e4m3fn: only S.1111.111 is
    NaN, no Inf), "fnuz" (0x80 is the only NaN, no -0, no Inf), "ieee" (e5m2: Inf and NaN)."""
    t = np.empty(256, dtype=np.float64)
    emax = (1 << exp_bits) - 1
    for c in range(256):
        s = -1.0 if c & 0x80 else 1.0
        e = (c >> man_bits) & emax
        m = c & ((1 << man_bits) - 1)
        if e == 0:
            v = m / float(1 << man_bits) * 2.0 ** (1 - bias)
        else:
            v = (1.0 + m / float(1 << man_bits)) * 2.0 ** (e - bias)
        if kind == "fn" and e == emax and m == (1 << man_bits) - 1:
            v = float("nan")
        elif kind == "ieee" and e == emax:
            v = float("inf") if m == 0 else float("nan")
        t[c] = s * v
    if kind == "fnuz":
        t[0x80] = float("nan")
    return t.astype(np.float32)


_TABLES = {}


def decode_table(name):
    """float32[256]: the value of every code of an 8-bit dtype (int8 codes as two's complement)."""
    if name not in _TABLES:
        if name == "fp8_e4m3fn":
            t = _fp8_table(4, 3, 7, "fn")
        elif name == "fp8_e4m3fnuz":
            t = _fp8_table(4, 3, 8, "fnuz")
        elif name == "fp8_e5m2":
            t = _fp8_table(5, 2, 15, "ieee")
        elif name == "int8":
            t = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.float32)
        else:
            raise ValueError("no decode table for %r" % name)
        t.setflags(write=False)
        _TABLES[name] = t
    return _TABLES[name]


def decode(codes, name):
    """Codes of `name` -> float32 values (same shape)."""
    codes = np.asarray(codes)
    if name == "bf16":
        return (codes.astype(np.uint32) << 16).view(np.float32)
    if name == "fp16":
        return codes.astype(np.uint16).view(np.float16).astype(np.float32)
    if name == "fp32":
        return codes.astype(np.float32)
    return decode_table(name)[codes.astype(np.uint8)]


def encode(values, name):
    """float values -> codes of `name`, round-to-nearest-even. 16-bit formats follow IEEE
    (overflow gives Inf); 8-bit formats saturate to their largest finite value."""
    x = np.asarray(values, dtype=np.float32)
    if name == "bf16":
        u = x.view(np.uint32).astype(np.uint64)
        nan = (u & 0x7FFFFFFF) > 0x7F800000
        r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
        return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), r)
    if name == "fp16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).view(np.uint16)
    if name == "fp32":
        return x.copy()
    if name == "int8":
        q = np.clip(np.rint(np.nan_to_num(x, nan=-128.0)), -127, 127)
        q = np.where(np.isnan(x), -128, q)
        return q.astype(np.int8).view(np.uint8)
    return _encode_fp8(x, name)


def _encode_fp8(x, name):
    t = decode_table(name)
    codes = np.arange(128, dtype=np.uint8)
    finite = np.isfinite(t[:128])
    pos_codes = codes[finite]  # codes 0..0x7F of finite non-negative values, increasing
    pos_vals = t[:128][finite].astype(np.float64)
    a = np.abs(x.astype(np.float64))
    a = np.minimum(np.nan_to_num(a, nan=0.0, posinf=pos_vals[-1]), pos_vals[-1])  # saturate
    hi = np.clip(np.searchsorted(pos_vals, a), 0, len(pos_vals) - 1)
    lo = np.clip(hi - 1, 0, None)
    dlo, dhi = a - pos_vals[lo], pos_vals[hi] - a
    # Nearest; on a tie the even code (mantissa LSB 0).
    pick_hi = (dhi < dlo) | ((dhi == dlo) & (pos_codes[hi] % 2 == 0))
    c = np.where(pick_hi, pos_codes[hi], pos_codes[lo])
    neg = np.signbit(x)
    if name == "fp8_e4m3fnuz":
        neg &= c != 0  # fnuz has no -0: 0x80 is NaN
    c = np.where(neg, c | 0x80, c).astype(np.uint8)
    return np.where(np.isnan(x), np.uint8(POISON[name]), c).astype(np.uint8)


def round_to(values, name):
    """values rounded through the codes of `name` (e.g. the output rounding to the q dtype)."""
    return decode(encode(values, name), name)


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
    blk is the *physical* page."""
    blk, h, tok, d = (_int64(a) for a in (blk, h, tok, d))
    H, B, D = p["num_kv_heads"], p["block_size"], p["head_size"]
    x = p.x
    base = blk * int(p["page_stride"])
    layout = p["kv_layout"]
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


def token_slots(p, block_tables, context_lens, seqs=None, pad_to=None):
    """Physical slots of the logical tokens: (blk, tok, valid), each [n, T].

    Row r is sequence seqs[r] (default all); T = pad_to or that set's max context. Tokens past a
    sequence's context are pointed at its token 0 (valid is False there): a gather then reads
    real data, never a poisoned page, and the caller masks them."""
    bt = np.asarray(host(block_tables)).reshape(-1, p["max_blocks_per_seq"])
    cl = np.asarray(host(context_lens)).reshape(-1)
    if seqs is None:
        seqs = np.arange(cl.shape[0])
    seqs = np.atleast_1d(np.asarray(seqs))
    ctx = cl[seqs].astype(np.int64)
    T = int(pad_to if pad_to is not None else (ctx.max() if ctx.size else 0))
    t = np.arange(T, dtype=np.int64)[None, :]
    valid = t < ctx[:, None]
    t = np.where(valid, t, 0)
    B = p["block_size"]
    blk = bt[seqs[:, None], t // B].astype(np.int64)
    return blk, t % B, valid


def gather_offsets(p, which, blk, tok):
    """Offsets [n, T, Hkv, D] of the slots (blk, tok) [n, T] for every head and d."""
    H, D = p["num_kv_heads"], p["head_size"]
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


def gather_codes(p, buffers, which, blk, tok):
    """(codes [n, T, Hkv, D], scales float32 [n, T, Hkv]) of K or V at the slots (blk, tok)
    [n, T]: what dequantize() (or dequantize_torch() on a device) turns into values."""
    cache, scales = kv_buffers(buffers, which)
    return cache[gather_offsets(p, which, blk, tok)], gather_scales(p, scales, blk, tok)


def dequantize(p, codes, scales, dtype=np.float32):
    """Values of gathered KV codes [..., D] times their slots' scales [...] (gather_scales), in
    `dtype`: float32 rounds each product as an fp32 kernel does, float64 keeps it exact."""
    return decode(codes, p["kv_dtype"]).astype(dtype, copy=False) * scales[..., None]


def gather_kv(p, buffers, which, seqs=None, pad_to=None, dtype=np.float32):
    """Dequantized logical K or V: (`dtype` [n, T, Hkv, D], valid [n, T]).
    The one-call path for adapters that want dense tensors (pads as token_slots does)."""
    blk, tok, valid = token_slots(p, buffers.block_tables, buffers.context_lens, seqs, pad_to)
    codes, scales = gather_codes(p, buffers, which, blk, tok)
    return dequantize(p, codes, scales, dtype), valid


def visible(p, ctx, T):
    """bool [q_len, T]: key t visible to query token i of a sequence with context ctx (causal
    among the q_len new tokens, and the sliding window when set)."""
    pos = ctx - p["q_len"] + np.arange(p["q_len"])[:, None]
    t = np.arange(T)[None, :]
    ok = t <= pos
    if p["sliding_window"] > 0:
        ok &= t > pos - p["sliding_window"]
    return ok


def query_positions(p, ctx):
    """int [q_len]: the positions p = ctx - q_len + i of the query tokens."""
    return ctx - p["q_len"] + np.arange(p["q_len"])


def scatter_codes(p, cache, which, blk, tok, codes):
    """Writes codes [n, T, Hkv, D] at the slots (blk, tok) [n, T]: the inverse of a gather, for
    tests and for adapters that stage a cache in another layout."""
    cache[gather_offsets(p, which, blk, tok)] = codes


def pool_elements(p):
    """Elements a K (or V) pool spans: (NB - 1) * page_stride + Hkv * B * D."""
    nb = int(p["num_blocks"])
    return 0 if nb <= 0 else (nb - 1) * int(p["page_stride"]) + p.dense_page


def default_scale(p):
    return 1.0 / math.sqrt(p["head_size"])


def softmax_scale(p):
    """The logits' scale: the problem's softmax_scale, or 1/sqrt(D) where it is 0 / unset."""
    return float(p["softmax_scale"] or default_scale(p))


# The device and torch half (pacheck_torch.py), under this module's names: adapters call
# pa.to_torch, pa.gather_kv_torch, pa.store_codes, ... as before.
from pacheck_torch import (_STORAGE, _TORCH_NAMES, TensorSpec, default_device,  # noqa: E402,F401
                           dequantize_torch, gather_kv_torch, native_fp8, store_codes,
                           store_float32, to_torch, torch_dtype)
