"""Test cases built in numpy, *independently* of the layout helpers under test.

The pack here uses the stride form of docs/layouts.md (s_h, split token / d modes) rather than
pacheck_adapter.kv_offsets, so a gather that agrees with it checks the helpers against a second
derivation of the formulas. The expected output is a dense attention over the logical tokens,
never the paged cache. Free pages, unused slots, page padding and unused per-token scales hold
poison (NaN), as pacheck's own inputs do, so a read of anything else shows up as NaN.
"""
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ADAPTERS = os.path.dirname(HERE)
if ADAPTERS not in sys.path:
    sys.path.insert(0, ADAPTERS)

import pacheck_adapter as pa  # noqa: E402

FORMAT_MAX = {"fp8_e4m3fn": 448.0, "fp8_e4m3fnuz": 240.0, "fp8_e5m2": 57344.0, "int8": 127.0}


def page_strides(layout, which, H, B, D, x):
    """(s_h, t_split, t_lo, t_hi, d_split, d_lo, d_hi): index i of a split mode (n, m):(lo, hi)
    goes to (i % n) * lo + (i // n) * hi. Straight from the table in docs/layouts.md."""
    if layout == "nhd":
        return D, B, H * D, 0, D, 1, 0
    if layout == "hnd":
        return B * D, B, D, 0, D, 1, 0
    if which == "k":  # vllm and shuffled K: [H, D/x, B, x]
        return D * B, B, x, 0, x, 1, B * x
    if layout == "vllm":  # V [H, D, B]
        return D * B, B, 1, 0, D, B, 0
    return D * B, x, 1, D * x, D, x, 0  # shuffled V [H, B/x, D, x]


def offset(layout, which, H, B, D, x, ps, blk, h, tok, d):
    s_h, tn, tlo, thi, dn, dlo, dhi = page_strides(layout, which, H, B, D, x)
    return (blk * ps + h * s_h + (tok % tn) * tlo + (tok // tn) * thi + (d % dn) * dlo
            + (d // dn) * dhi)


class Case(object):
    pass


def make_case(seed=1, S=2, L=1, Hq=4, Hkv=2, D=32, B=16, ctx=None, q_dtype="bf16",
              kv_dtype="bf16", layout="nhd", scale_mode="none", page_pad=0, window=0, softcap=0.0,
              alibi=False, sinks=False, want_lse=True, softmax_scale=None, free_pages=4,
              q_lens=None, Dv=None, csr=False):
    """A case with its arrays as pacheck hands them over. The ragged family (ABI 1.2): q_lens
    (per-sequence query tokens: a ragged batch, q_len 0 and packed [T, Hq, ...] rows), Dv (V and
    output head size), a context of 0 (an empty sequence) and csr (the CSR page table instead of
    block_tables)."""
    rng = np.random.default_rng(seed)
    if q_lens is not None:
        q_lens = [int(n) for n in q_lens]
        S = len(q_lens) if ctx is None else S
    if ctx is None:
        lo = [max(1, L)] * S if q_lens is None else [max(1, n) for n in q_lens]
        ctx = [int(rng.integers(lo[s], 3 * B + 5 + lo[s])) if q_lens is not None
               else int(rng.integers(lo[s], 3 * B + 5)) for s in range(S)]
    ctx = [int(c) for c in ctx]
    S = len(ctx)
    ragged = q_lens is not None
    qls = q_lens if ragged else [L] * S
    Dv = int(Dv or D)
    x = 16 // pa.DTYPE_BYTES[kv_dtype]
    pages = [int(math.ceil(c / float(B))) for c in ctx]
    NB = sum(pages) + free_pages
    perm = rng.permutation(NB)
    MB = max(pages) + 1
    free = perm[sum(pages):]
    bt = np.empty((S, MB), dtype=np.int32)
    at = 0
    for s in range(S):
        bt[s, :pages[s]] = perm[at:at + pages[s]]
        at += pages[s]
        # Entries past the end are garbage: point them at free (poisoned) pages.
        bt[s, pages[s]:] = rng.choice(free, MB - pages[s]) if len(free) else perm[0]
    dense, dense_v = Hkv * B * D, Hkv * B * Dv
    ps, ps_v = dense + page_pad, dense_v + page_pad
    hs = {"k": (D, ps), "v": (Dv, ps_v)}  # head size and page stride of K and of V
    cdt = pa.code_dtype(kv_dtype)
    caches = {w: np.full((NB - 1) * hs[w][1] + Hkv * B * hs[w][0], pa.POISON[kv_dtype], dtype=cdt)
              for w in "kv"}

    # Scales: one per unit, as pacheck draws them (16-bit: [1/2, 2]; 8-bit: amax-sized).
    eight = pa.DTYPE_BYTES[kv_dtype] == 1
    unit = (3.0 / FORMAT_MAX[kv_dtype]) if eight else 1.0
    n_scale = {"none": 1, "per_tensor": 1, "per_head": Hkv}.get(scale_mode, NB * Hkv * B)
    scales = {}
    for w in "kv":
        if scale_mode == "none":
            scales[w] = np.ones(1, dtype=np.float32)
        elif scale_mode.startswith("per_token"):
            scales[w] = np.full(n_scale, np.nan, dtype=np.float32)  # unused slots: poison
        else:
            scales[w] = (rng.uniform(0.5, 2.0, n_scale) * unit).astype(np.float32)

    def scale_at(w, blk, h, tok):
        if scale_mode in ("none", "per_tensor"):
            return 0
        if scale_mode == "per_head":
            return h
        if scale_mode == "per_token_block_major":
            return (blk * Hkv + h) * B + tok
        return h * NB * B + blk * B + tok

    logical = {w: [] for w in "kv"}
    for s in range(S):
        for w in "kv":
            Dw, psw = hs[w]
            vals = np.empty((ctx[s], Hkv, Dw), dtype=np.float64)
            for t in range(ctx[s]):
                blk, tok = int(bt[s, t // B]), t % B
                for h in range(Hkv):
                    si = scale_at(w, blk, h, tok)
                    if scale_mode.startswith("per_token"):
                        scales[w][si] = rng.uniform(0.5, 2.0) * unit
                    sc = float(scales[w][si])
                    codes = pa.encode(rng.standard_normal(Dw) / sc, kv_dtype)
                    d = np.arange(Dw)
                    caches[w][offset(layout, w, Hkv, B, Dw, x, psw, blk, h, tok, d)] = codes
                    vals[t, h] = pa.decode(codes, kv_dtype).astype(np.float64) * sc
            logical[w].append(vals)

    T = sum(qls)
    rows = (T,) if ragged else (S, L)
    q_codes = pa.encode(rng.standard_normal(rows + (Hq, D)), q_dtype)
    c = Case()
    problem = dict(
        num_seqs=S, q_len=0 if ragged else L, num_q_heads=Hq, num_kv_heads=Hkv, head_size=D,
        block_size=B, max_blocks_per_seq=MB, max_context=max(ctx), num_blocks=NB, page_stride=ps,
        q_dtype=q_dtype, kv_dtype=kv_dtype, kv_layout=layout, scale_mode=scale_mode,
        softmax_scale=float(softmax_scale if softmax_scale else 1.0 / math.sqrt(D)),
        sliding_window=int(window), logit_softcap=float(softcap), has_alibi=int(bool(alibi)),
        has_sinks=int(bool(sinks)), partition_size=256, want_lse=int(bool(want_lse)))
    if ragged or Dv != D or csr or 0 in ctx:  # the ABI 1.2 fields, as pacheck sends them
        problem.update(head_size_v=Dv, total_q=T, max_q_len=max(qls),
                       page_table="csr" if csr else "padded",
                       num_kv_indices=sum(pages) if csr else 0, page_stride_v=ps_v)
    c.problem = pa.make_problem(problem)
    slopes = np.array([2.0 ** -(1 + (8 * h) // Hq) for h in range(Hq)], dtype=np.float32)
    sink_vals = (rng.standard_normal(Hq) * 2).astype(np.float32)
    c.arrays = dict(
        q=q_codes, out=np.full(rows + (Hq, Dv), 0xFFFF, dtype=pa.code_dtype(q_dtype)),
        lse=np.full(rows + (Hq,), np.nan, dtype=np.float32) if want_lse else None,
        k_cache=caches["k"], v_cache=caches["v"], k_scales=scales["k"], v_scales=scales["v"],
        block_tables=bt, context_lens=np.array(ctx, dtype=np.int32),
        alibi_slopes=slopes if alibi else None, sinks=sink_vals if sinks else None)
    if "total_q" in problem:
        c.arrays["cu_seqlens_q"] = np.concatenate([[0], np.cumsum(qls)]).astype(np.int32)
    if csr:
        # kv_indptr / kv_indices (sequences' pages concatenated, then garbage: free pages) /
        # kv_last_page_len; no block table. A stream of its own keeps the other draws as they were.
        g = np.random.default_rng(seed + 7919)
        indptr = np.concatenate([[0], np.cumsum(pages)]).astype(np.int32)
        used = np.concatenate([bt[s, :pages[s]] for s in range(S)] + [np.zeros(0, np.int32)])
        garbage = g.choice(free, 3) if len(free) else np.full(3, perm[0])
        c.arrays.update(
            block_tables=None, kv_indptr=indptr,
            kv_indices=np.concatenate([used, garbage]).astype(np.int32),
            kv_last_page_len=np.array([c_ - (n - 1) * B if n else 0 for c_, n in zip(ctx, pages)],
                                      dtype=np.int32))
    c.ctx, c.q_lens, c.logical_k, c.logical_v = ctx, qls, logical["k"], logical["v"]
    c.q = pa.decode(q_codes, q_dtype).astype(np.float64)
    return c


def mla_offset(layout, which, B, D, Dv, ps, ps_v, blk, tok, d):
    """(cache, offset) of logical element d of K (which="k") or V at (blk, tok) of an MLA layout,
    written out from the contract (one latent head; pages of [B][row]) rather than taken from
    pacheck_adapter: mla_joint rows of D in both caches (V: the row's first Dv); mla_split V
    rows of Dv in the V cache (ckv), and K's elements d < Dv there too, the rest rows of D - Dv
    in the K cache (kpe). d: an index, or an array of indices all on one side of Dv."""
    if layout == "mla_joint":
        return which, blk * (ps if which == "k" else ps_v) + tok * D + d
    if which == "v" or np.all(np.asarray(d) < Dv):
        return "v", blk * ps_v + tok * Dv + d
    return "k", blk * ps + tok * (D - Dv) + (d - Dv)


def make_mla_case(seed=1, ctx=(40, 17), q_lens=None, L=1, Hq=16, B=16, D=576, Dv=512,
                  layout="mla_joint", q_dtype="bf16", kv_dtype="bf16", scale_mode="none",
                  page_pad=0, want_lse=True, softmax_scale=None, free_pages=3, csr=False):
    """An MLA case (kv_layout mla_joint / mla_split: one latent KV head, K = latent (Dv) + rope
    (D - Dv), V = the latent part) with its arrays as pacheck hands them over, packed by
    mla_offset(). Free pages, page padding and mla_joint's unused V bytes hold poison except
    where the contract makes the two joint caches byte-identical copies (the V cache is the K
    cache, poison included). One per-tensor scale (or none) serves K and V. q_lens: a ragged
    batch (q_len 0, packed rows); else q_len L for every sequence. softmax_scale defaults to
    1/sqrt(192), MLA's (the head size before weight absorption)."""
    rng = np.random.default_rng(seed)
    ctx = [int(c) for c in ctx]
    S = len(ctx)
    ragged = q_lens is not None
    qls = [int(n) for n in q_lens] if ragged else [L] * S
    R = D - Dv
    pages = [int(math.ceil(c / float(B))) for c in ctx]
    NB = sum(pages) + free_pages
    perm = rng.permutation(NB)
    MB = max(max(pages), 1) + 1
    free = perm[sum(pages):]
    bt = np.empty((S, MB), dtype=np.int32)
    at = 0
    for s in range(S):
        bt[s, :pages[s]] = perm[at:at + pages[s]]
        at += pages[s]
        bt[s, pages[s]:] = rng.choice(free, MB - pages[s]) if len(free) else perm[0]
    rows = {"mla_joint": (D, D), "mla_split": (R, Dv)}[layout]  # K cache row, V cache row
    ps, ps_v = B * rows[0] + page_pad, B * rows[1] + page_pad
    cdt = pa.code_dtype(kv_dtype)
    caches = {"k": np.full((NB - 1) * ps + B * rows[0], pa.POISON[kv_dtype], dtype=cdt),
              "v": np.full((NB - 1) * ps_v + B * rows[1], pa.POISON[kv_dtype], dtype=cdt)}
    eight = pa.DTYPE_BYTES[kv_dtype] == 1
    sc = 1.0 if scale_mode == "none" else float(rng.uniform(0.5, 2.0)
                                                * (3.0 / FORMAT_MAX[kv_dtype] if eight else 1.0))
    scales = np.array([sc], dtype=np.float32)
    logical = []
    for s in range(S):
        codes = pa.encode(rng.standard_normal((ctx[s], D)) / sc, kv_dtype)  # [ctx, D]
        for t in range(ctx[s]):
            blk, tok = int(bt[s, t // B]), t % B
            for d in (np.arange(Dv), np.arange(Dv, D)):  # the latent part, the rope part
                c, off = mla_offset(layout, "k", B, D, Dv, ps, ps_v, blk, tok, d)
                caches[c][off] = codes[t, d]
        logical.append(pa.decode(codes, kv_dtype).astype(np.float64)[:, None, :]
                       * float(scales[0]))  # [ctx, 1, D]
    if layout == "mla_joint":
        caches["v"] = caches["k"].copy()  # the contract: a byte-identical copy
    T = sum(qls)
    qrows = (T,) if ragged else (S, L)
    q_codes = pa.encode(rng.standard_normal(qrows + (Hq, D)), q_dtype)
    c = Case()
    c.problem = pa.make_problem(dict(
        num_seqs=S, q_len=0 if ragged else L, num_q_heads=Hq, num_kv_heads=1, head_size=D,
        block_size=B, max_blocks_per_seq=MB, max_context=max(ctx), num_blocks=NB, page_stride=ps,
        q_dtype=q_dtype, kv_dtype=kv_dtype, kv_layout=layout, scale_mode=scale_mode,
        softmax_scale=float(softmax_scale if softmax_scale else 1.0 / math.sqrt(192)),
        sliding_window=0, logit_softcap=0.0, has_alibi=0, has_sinks=0, partition_size=256,
        want_lse=int(bool(want_lse)), head_size_v=Dv, total_q=T, max_q_len=max(qls),
        page_table="csr" if csr else "padded", num_kv_indices=sum(pages) if csr else 0,
        page_stride_v=ps_v))
    c.arrays = dict(
        q=q_codes, out=np.full(qrows + (Hq, Dv), 0xFFFF, dtype=pa.code_dtype(q_dtype)),
        lse=np.full(qrows + (Hq,), np.nan, dtype=np.float32) if want_lse else None,
        k_cache=caches["k"], v_cache=caches["v"], k_scales=scales, v_scales=scales.copy(),
        block_tables=bt, context_lens=np.array(ctx, dtype=np.int32), alibi_slopes=None,
        sinks=None, cu_seqlens_q=np.concatenate([[0], np.cumsum(qls)]).astype(np.int32))
    if csr:
        indptr = np.concatenate([[0], np.cumsum(pages)]).astype(np.int32)
        used = np.concatenate([bt[s, :pages[s]] for s in range(S)] + [np.zeros(0, np.int32)])
        garbage = rng.choice(free, 3) if len(free) else np.full(3, perm[0])
        c.arrays.update(
            block_tables=None, kv_indptr=indptr,
            kv_indices=np.concatenate([used, garbage]).astype(np.int32),
            kv_last_page_len=np.array([c_ - (n - 1) * B if n else 0 for c_, n in zip(ctx, pages)],
                                      dtype=np.int32))
    c.ctx, c.q_lens = ctx, qls
    c.logical_k = logical
    c.logical_v = [k[:, :, :Dv] for k in logical]
    c.q = pa.decode(q_codes, q_dtype).astype(np.float64)
    return c


def buffers(case):
    """Fresh Buffers over copies of the case's arrays (out/lse poisoned)."""
    return pa.Buffers(**{k: (None if v is None else v.copy()) for k, v in case.arrays.items()})


def dense_attention(case):
    """(out float64 [S, L, Hq, Dv], lse [S, L, Hq]) by the definition, from the logical tokens;
    [T, Hq, Dv] and [T, Hq] for a ragged batch. An empty sequence's rows: O = 0 and LSE = -inf
    (with sinks, the sink's logit)."""
    p = case.problem
    S, Hq, Hkv = p.num_seqs, p.num_q_heads, p.num_kv_heads
    G = Hq // Hkv
    rows = case.arrays["out"].shape[:-2]
    out = np.zeros(rows + (Hq, p.head_size_v)).reshape(-1, Hq, p.head_size_v)
    lse = np.zeros(rows + (Hq,)).reshape(-1, Hq)
    slopes, sinks = case.arrays["alibi_slopes"], case.arrays["sinks"]
    qrows = case.q.reshape(-1, Hq, p.head_size)
    row0 = np.concatenate([[0], np.cumsum(case.q_lens)])
    for s in range(S):
        ctx, L = case.ctx[s], case.q_lens[s]
        for i in range(L):
            r = int(row0[s]) + i
            pos = ctx - L + i
            if ctx == 0:
                lse[r] = sinks if p.has_sinks else -np.inf
                continue
            lo = max(0, pos - p.sliding_window + 1) if p.sliding_window > 0 else 0
            ts = np.arange(lo, pos + 1)
            for h in range(Hq):
                k = case.logical_k[s][ts, h // G]
                v = case.logical_v[s][ts, h // G]
                xs = p.softmax_scale * (k @ qrows[r, h])
                if p.logit_softcap > 0:
                    xs = p.logit_softcap * np.tanh(xs / p.logit_softcap)
                if p.has_alibi:
                    xs = xs + float(slopes[h]) * (ts - pos)
                allx = np.concatenate([xs, [float(sinks[h])]]) if p.has_sinks else xs
                m = allx.max()
                den = np.exp(allx - m).sum()
                out[r, h] = (np.exp(xs - m) @ v) / den
                lse[r, h] = m + math.log(den)
    return out.reshape(rows + (Hq, p.head_size_v)), lse.reshape(rows + (Hq,))


def place(case, fd, extra=0):
    """(capacity, buffer specs): the case's arrays written into memory file fd (grown when too
    small), 64-byte aligned with 256-byte gaps (where the parent keeps its canaries)."""
    specs, at, chunks = {}, 0, []
    for name, arr in case.arrays.items():
        if arr is None:
            continue
        b = np.ascontiguousarray(arr).tobytes()
        specs[name] = [at, len(b)]
        chunks.append((at, b))
        at = (at + len(b) + 256 + 63) // 64 * 64
    capacity = at + extra
    if os.fstat(fd).st_size < capacity:
        os.ftruncate(fd, capacity)
    for off, b in chunks:
        os.pwrite(fd, b, off)
    return capacity, specs


def read_back(fd, spec, dtype, shape):
    return np.frombuffer(os.pread(fd, spec[1], spec[0]), dtype=dtype).reshape(shape)
