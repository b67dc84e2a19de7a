"""numpy_reference: plain numpy paged-attention decode (fp64 math) over the paged cache.

The example adapter: it reads the *physical* cache through the helpers' paged map (block table,
layout formula, scale index), exactly as a real kernel must, so it exercises every layout and
scale mode pacheck generates, on any machine.

PACHECK_PLANT_BUG plants a realistic bug, so that pacheck can be shown catching one:
    1 or "scale"  per-token scales indexed by the *logical* page (t / B) instead of the physical
                  page from the block table (the classic one: right for page 0 only when pages
                  are placed in order, which pacheck never does)
    "v_layout"    V read with K's layout (invisible for nhd/hnd, and for shuffled 8-bit B = 16)
    "causal"      the causal offset off by one: query token i also sees token p + 1 (q_len > 1)
"""
import os

import numpy as np

import pacheck_adapter as pa

_BUG = os.environ.get("PACHECK_PLANT_BUG", "").strip().lower()
PLANT_BUG = {"": None, "0": None, "1": "scale", "scale": "scale", "v_layout": "v_layout",
             "causal": "causal"}.get(_BUG, "scale")

NAME = "numpy_reference"
VERSION = "1"
PROVENANCE = "pacheck adapters/numpy_reference.py (numpy %s)" % np.__version__
if PLANT_BUG:
    PROVENANCE += " WITH A PLANTED BUG (%s)" % PLANT_BUG
MEMORY = "host"
CAPABILITY = pa.broad_capability()
# Logits, softmax and P.V in fp64; only the output is rounded (to the q dtype).
NUMERICS = pa.numerics("fp32", "fp32", "fp32")


def _kv(p, b, which, s):
    """Dequantized [ctx, Hkv, D] float64 of sequence s, read from the physical cache."""
    blk, tok, _ = pa.token_slots(p, b.block_tables, b.context_lens, seqs=[s])
    cache, scales = pa.kv_buffers(b, which)
    codes = cache[pa.gather_offsets(p, "k" if PLANT_BUG == "v_layout" else which, blk, tok)]
    scale_blk = blk
    if PLANT_BUG == "scale" and p["scale_mode"].startswith("per_token"):
        scale_blk = np.arange(blk.shape[1], dtype=np.int64)[None, :] // p["block_size"]
    return pa.dequantize(p, codes, pa.gather_scales(p, scales, scale_blk, tok), np.float64)[0]


def run(p, b):
    S, L, Hq, Hkv, D = p["num_seqs"], p["q_len"], p["num_q_heads"], p["num_kv_heads"], \
        p["head_size"]
    G = Hq // Hkv
    scale = pa.softmax_scale(p)
    cap = p["logit_softcap"]
    q = pa.decode(b.q, p["q_dtype"]).astype(np.float64)  # [S, L, Hq, D]
    slopes = None if not p["has_alibi"] else np.asarray(b.alibi_slopes, np.float64).reshape(Hkv, G)
    sinks = None if not p["has_sinks"] else np.asarray(b.sinks, np.float64).reshape(Hkv, G)
    for s in range(S):
        ctx = int(b.context_lens[s])
        k, v = _kv(p, b, "k", s), _kv(p, b, "v", s)  # [ctx, Hkv, D]
        qs = q[s].reshape(L, Hkv, G, D)  # query head h = kv head h / G, member h % G
        x = np.einsum("lhgd,thd->lhgt", qs, k) * scale
        if cap > 0:
            x = cap * np.tanh(x / cap)
        pos = pa.query_positions(p, ctx)  # [L]
        if PLANT_BUG == "causal":
            pos = pos + 1
        t = np.arange(ctx)[None, :]
        if slopes is not None:
            x = x + slopes[None, :, :, None] * (t - pos[:, None])[:, None, None, :]
        vis = t <= pos[:, None]
        if p["sliding_window"] > 0:
            vis &= t > pos[:, None] - p["sliding_window"]
        x = np.where(vis[:, None, None, :], x, -np.inf)
        m = x.max(axis=-1)
        if sinks is not None:
            m = np.maximum(m, sinks[None])
        e = np.exp(x - m[..., None])
        l = e.sum(axis=-1)
        if sinks is not None:
            l = l + np.exp(sinks[None] - m)
        o = np.einsum("lhgt,thd->lhgd", e, v) / l[..., None]
        b.out[s] = pa.encode(o.reshape(L, Hq, D), p["q_dtype"])
        if b.lse is not None:
            b.lse[s] = (m + np.log(l)).reshape(L, Hq)
