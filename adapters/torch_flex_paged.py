"""torch_flex_paged: torch FlexAttention (torch.nn.attention.flex_attention) over the gathered
paged cache, with the problem's options written as one score_mod.

Where the installed torch has no FlexAttention (or no torch at all), the hello still works and
supports() refuses every case, naming why. The pages are gathered exactly as torch_sdpa does.

score_mod(score, b, h, q_idx, kv_idx) receives the scaled logit and applies, in pacheck's order,
soft-cap, ALiBi (slope * (t - p)), then -inf for keys outside the causal / sliding-window range
and past the sequence's context. GQA uses enable_gqa=True (query head h reads KV head h / G).
Sinks are not declared (they are no score_mod: they join the denominator only).

The ragged family (ABI 1.2) is declared: one flex_attention call per sequence over its own query
rows (positions ctx - q_len_s + i) and context, the pages gathered through either page table, V
with its own head size Dv; a sequence of context 0 is written directly (O = 0, LSE = -inf).

Eager FlexAttention (no torch.compile: modest, and no compile-time per case) computes scores in
fp32 and rounds P to the input dtype before P.V. On cuda the inputs are the q dtype; on cpu fp32.
"""

import pacheck_adapter as pa
import torch_sdpa

NAME = "torch_flex_paged"
VERSION = "1"
MEMORY = "device"  # pacheck's device buffers when it has a GPU (else host views, copied here)
CAPABILITY = pa.broad_capability(head_sizes=[16, 32, 64, 128, 256], max_gqa=16, sinks=False,
                                 **pa.ragged_capability())
NUMERICS = pa.numerics(p_round="as_q", qk_round="as_q", partial_round="fp32")

try:
    import torch
    from torch.nn.attention import flex_attention as _flex_mod
    _WHY = ""
    PROVENANCE = "torch %s flex_attention (eager)" % torch.__version__
except ImportError as e:
    torch, _flex_mod = None, None
    _WHY = "FlexAttention is not available: %s" % e
    PROVENANCE = "torch flex_attention (not available here)"


def supports(p):
    return (not _WHY, _WHY)


def _score_mod(p, b, seq, dev):
    """The score_mod of one sequence (pa.Sequence): its q_len and context."""
    L, ctx, W, cap = seq.q_len, seq.ctx, int(p["sliding_window"]), float(p["logit_softcap"])
    slopes = None
    if p["has_alibi"]:
        slopes = pa.to_torch(b.alibi_slopes, dev).float()

    def mod(score, bi, h, q_idx, kv_idx):
        pos = ctx - L + q_idx
        if cap > 0:
            score = cap * torch.tanh(score / cap)
        if slopes is not None:
            score = score + slopes[h] * (kv_idx - pos)
        ok = kv_idx <= pos
        if W > 0:
            ok = ok & (kv_idx > pos - W)
        return torch.where(ok, score, -float("inf"))
    return mod


def _flex(q, k, v, want_lse, **kw):
    """(o, lse or None) of flex_attention, by the installed torch's spelling."""
    aux = getattr(_flex_mod, "AuxRequest", None)
    if want_lse and aux is not None:  # newer torch: return_aux replaces return_lse
        o, extra = _flex_mod.flex_attention(q, k, v, return_aux=aux(lse=True), **kw)
        return o, extra.lse
    if want_lse:
        return _flex_mod.flex_attention(q, k, v, return_lse=True, **kw)
    return _flex_mod.flex_attention(q, k, v, **kw), None


def run(p, b):
    if _WHY:
        raise pa.NotSupported(_WHY)
    dev = pa.default_device()
    cdt = pa.torch_dtype(p["q_dtype"]) if dev != "cpu" else torch.float32
    scale = pa.softmax_scale(p)
    Hq, Dv = p["num_q_heads"], p.head_size_v
    q = pa.to_torch(b.rows("q"), dev, p["q_dtype"]).to(cdt)  # [T, Hq, D], packed rows
    k, v = torch_sdpa.gather_dense(p, b, dev, cdt)  # [S, Hkv, Tk, D|Dv]
    want_lse = b.lse is not None
    out = torch.zeros(q.shape[0], Hq, Dv, dtype=torch.float32, device=dev)
    lse = torch.full((q.shape[0], Hq), float("-inf"), dtype=torch.float32, device=dev)
    for seq in pa.sequences(p, b):
        if seq.q_len == 0 or seq.empty:  # context 0: O = 0, LSE = -inf (no sinks declared)
            continue
        r, s, ctx = seq.rows, seq.s, seq.ctx
        qs = q[r].permute(1, 0, 2)[None].contiguous()  # [1, Hq, L, D]
        ks, vs = k[s:s + 1, :, :ctx].contiguous(), v[s:s + 1, :, :ctx].contiguous()
        o, l = _flex(qs, ks, vs, want_lse, score_mod=_score_mod(p, b, seq, dev), scale=scale,
                     enable_gqa=True)
        out[r] = o[0].permute(1, 0, 2).float()
        if want_lse:
            lse[r] = l[0].permute(1, 0).float()
    pa.store_codes(b.rows("out"), out, p["q_dtype"])
    if want_lse:
        pa.store_float32(b.rows("lse"), lse)
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
