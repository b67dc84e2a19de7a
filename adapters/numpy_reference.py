"""numpy_reference: plain numpy paged-attention decode (fp64 math) over the paged cache.

The example adapter: it reads the *physical* cache through the helpers' paged map (block table,
layout formula, scale index), exactly as a real kernel must, so it exercises every layout (the
MLA ones too) and scale mode pacheck generates, on any machine.

PACHECK_PLANT_BUG plants a realistic bug, so that pacheck can be shown catching one:
    1 or "scale"  per-token scales indexed by the *logical* page (t / B) instead of the physical
                  page from the block table (the classic one: right for page 0 only when pages
                  are placed in order, which pacheck never does)
    "v_layout"    V read with K's layout (invisible for nhd/hnd, for shuffled 8-bit B = 16 and
                  for mla_split; on mla_joint it reads V in rows of Dv instead of D)
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
# Every layout, dtype and option, and the ragged family (ABI 1.2): per-sequence q_len up to 1024
# (an extend chunk), empty sequences, the padded and CSR page tables, Dv in {64, 128} besides
# Dv == D, the LSE in the natural base. And the MLA layouts (mla_joint, mla_split): D = 576 with
# Dv = 512, one latent KV head; the math is the same attention, only the gather differs
# (pa.read_codes reads each K and V element from the cache that holds it).
CAPABILITY = pa.broad_capability(
    kv_layouts=list(pa.LAYOUTS),
    head_sizes=list(range(16, 257, 16)) + [pa.MLA_HEAD_SIZE],
    **pa.ragged_capability(max_q_len=1024, head_sizes_v=[64, 128, pa.MLA_HEAD_SIZE_V]))
# Logits, softmax and P.V in fp64; only the output is rounded (to the q dtype).
NUMERICS = pa.numerics("fp32", "fp32", "fp32")


def _kv(p, b, which, s):
    """Dequantized [ctx, Hkv, D (V: Dv)] float64 of sequence s, read from the physical cache
    through the page table (padded or CSR); each element from the cache holding it (the MLA
    layouts: mla_split's K is the V cache's latent row then the K cache's rope row)."""
    blk, tok, _ = pa.token_slots(p, b, seqs=[s])
    cache, scales = pa.kv_buffers(b, which)
    if PLANT_BUG == "v_layout" and which == "v":
        # V read with K's layout formula (its own head size and page stride kept; for mla_joint
        # that is rows of Dv instead of D).
        codes = cache[_k_layout_offsets_for_v(p, blk, tok)]
    else:
        codes = pa.read_codes(p, b, which, blk, tok)
    scale_blk = blk
    if PLANT_BUG == "scale" and p["scale_mode"].startswith("per_token"):
        scale_blk = np.arange(blk.shape[1], dtype=np.int64)[None, :] // p["block_size"]
    return pa.dequantize(p, codes, pa.gather_scales(p, scales, scale_blk, tok), np.float64)[0]


def _k_layout_offsets_for_v(p, blk, tok):
    q = pa.Problem(p, head_size=p.head_size_v, page_stride=p.page_stride_v)
    return pa.gather_offsets(q, "k", blk, tok)


def run(p, b):
    Hq, Hkv, D, Dv = p["num_q_heads"], p["num_kv_heads"], p["head_size"], p.head_size_v
    G = Hq // Hkv
    scale = pa.softmax_scale(p)
    cap = p["logit_softcap"]
    q = pa.decode(b.rows("q"), p["q_dtype"]).astype(np.float64)  # [T, Hq, D]
    out, lse = b.rows("out"), b.rows("lse")  # [T, Hq, Dv], [T, Hq]
    slopes = None if not p["has_alibi"] else np.asarray(b.alibi_slopes, np.float64).reshape(Hkv, G)
    sinks = None if not p["has_sinks"] else np.asarray(b.sinks, np.float64).reshape(Hkv, G)
    for seq in pa.sequences(p, b):
        L, ctx = seq.q_len, seq.ctx
        if L == 0:
            continue
        if seq.empty:  # no key: O = 0; LSE = -inf, or the sink's logit (alone in the denominator)
            out[seq.rows] = pa.encode(np.zeros((L, Hq, Dv)), p["q_dtype"])
            if lse is not None:
                row = np.full(Hq, -np.inf) if sinks is None else sinks.reshape(Hq)
                lse[seq.rows] = np.broadcast_to(row, (L, Hq))
            continue
        k, v = _kv(p, b, "k", seq.s), _kv(p, b, "v", seq.s)  # [ctx, Hkv, D], [ctx, Hkv, Dv]
        qs = q[seq.rows].reshape(L, Hkv, G, D)  # query head h = kv head h / G, member h % G
        x = np.einsum("lhgd,thd->lhgt", qs, k) * scale
        if cap > 0:
            x = cap * np.tanh(x / cap)
        pos = seq.positions()  # [L]
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
        out[seq.rows] = pa.encode(o.reshape(L, Hq, Dv), p["q_dtype"])
        if lse is not None:
            lse[seq.rows] = (m + np.log(l)).reshape(L, Hq)
