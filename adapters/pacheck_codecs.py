"""Element codecs for pacheck Python adapters (re-exported by pacheck_adapter under the same names):
the dtype names of include/pacheck/kernel_abi.h in the order of its enum, their sizes and poison
codes, bf16/fp16 codes <-> float32 (round-to-nearest-even), fp8 e4m3fn / e4m3fnuz / e5m2 and int8
decode tables built from the bit fields, and saturating encoders. Only numpy is required.
"""
import numpy as np

DTYPES = ("bf16", "fp16", "fp8_e4m3fn", "fp8_e4m3fnuz", "int8", "fp32", "fp8_e5m2")
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp8_e4m3fn": 1, "fp8_e4m3fnuz": 1, "int8": 1, "fp32": 4,
               "fp8_e5m2": 1}
# Poison codes (never to be read): a kernel that reads a free slot produces NaN.
POISON = {"bf16": 0x7FC0, "fp16": 0x7E00, "fp8_e4m3fn": 0x7F, "fp8_e4m3fnuz": 0x80, "int8": 0x80,
          "fp8_e5m2": 0x7F}


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
