"""The batch of a launch as an adapter reads it: query rows (cu_seqlens_q), contexts and the page
table in either form (padded block_tables or CSR), one Sequence per request, and the pool slots of
its tokens. Split from pacheck_adapter.py, which re-exports every name here (pa.sequences, ...)."""
import numpy as np

from pacheck_adapter import Buffers, host


def _is_csr(p):
    return p.get("page_table", "padded") in ("csr", 1)


# ---- the batch: query rows, contexts and the page table of either form -----------------------
def cu_seqlens(p, buffers=None):
    """int64 [S + 1]: the first packed query row of each sequence (cu_seqlens_q), then T. From
    the buffer when given, else the uniform rows s * q_len."""
    cu = None if buffers is None else getattr(buffers, "cu_seqlens_q", None)
    if cu is not None:
        return np.asarray(host(cu), dtype=np.int64).reshape(-1)[:p["num_seqs"] + 1]
    if not p.get("q_len"):
        raise ValueError("a ragged problem (q_len 0) needs the cu_seqlens_q buffer")
    return np.arange(p["num_seqs"] + 1, dtype=np.int64) * p["q_len"]


def q_lens(p, buffers=None):
    """int64 [S]: each sequence's query tokens."""
    return np.diff(cu_seqlens(p, buffers))


def contexts(p, buffers):
    """int64 [S]: each sequence's context, decoded from the CSR table when the problem's page
    table is csr ((pages - 1) * B + kv_last_page_len[s]; 0 pages -> 0), else context_lens."""
    if _is_csr(p):
        indptr = np.asarray(host(buffers.kv_indptr), dtype=np.int64).reshape(-1)
        last = np.asarray(host(buffers.kv_last_page_len), dtype=np.int64).reshape(-1)
        S = p["num_seqs"]
        pages = np.diff(indptr[:S + 1])
        return np.where(pages > 0, (pages - 1) * p["block_size"] + last[:S], 0)
    return np.asarray(host(buffers.context_lens), dtype=np.int64).reshape(-1)


def page_table(p, buffers):
    """(table int64 [S, P], ctx int64 [S]): the physical page of logical page j of sequence s
    at table[s, j] for j < ceil(ctx[s] / B) -- read from block_tables, or from the CSR arrays
    (kv_indices[kv_indptr[s] + j]) when the page table is csr. Entries past a sequence's pages
    are garbage (CSR: 0) and must not be read."""
    ctx = contexts(p, buffers)
    if not _is_csr(p):
        bt = np.asarray(host(buffers.block_tables)).reshape(-1, p["max_blocks_per_seq"])
        return bt.astype(np.int64, copy=False), ctx
    S = p["num_seqs"]
    indptr = np.asarray(host(buffers.kv_indptr), dtype=np.int64).reshape(-1)[:S + 1]
    indices = buffers.kv_indices
    indices = (np.zeros(1, np.int64) if indices is None
               else np.asarray(host(indices), dtype=np.int64).reshape(-1))
    pages = np.diff(indptr)
    P = max(1, int(pages.max()) if pages.size else 1)
    j = np.arange(P, dtype=np.int64)[None, :]
    have = j < pages[:, None]
    at = np.clip(indptr[:-1, None] + j, 0, max(0, indices.size - 1))
    return np.where(have, indices[at] if indices.size else 0, 0), ctx


class Sequence(object):
    """One sequence of the batch: s, its query rows [row0, row1) of the packed q / out / lse
    (q_len = row1 - row0), its context ctx, and the positions of its query tokens."""
    __slots__ = ("s", "row0", "row1", "ctx")

    def __init__(self, s, row0, row1, ctx):
        self.s, self.row0, self.row1, self.ctx = int(s), int(row0), int(row1), int(ctx)

    @property
    def q_len(self):
        return self.row1 - self.row0

    @property
    def rows(self):
        """slice of the packed rows: b.rows("q")[seq.rows] is [q_len, Hq, D]."""
        return slice(self.row0, self.row1)

    @property
    def empty(self):
        """Context 0: its rows see no key (O = 0; LSE = -inf, or the sink's logit)."""
        return self.ctx == 0

    def positions(self):
        """int64 [q_len]: query token i sits at position ctx - q_len + i."""
        return self.ctx - self.q_len + np.arange(self.q_len, dtype=np.int64)

    def __repr__(self):
        return "Sequence(s=%d, rows=[%d, %d), ctx=%d)" % (self.s, self.row0, self.row1, self.ctx)


def sequences(p, buffers):
    """The batch's sequences in order (Sequence objects): query rows from cu_seqlens_q, context
    from context_lens or the CSR table. A uniform batch gives rows [s * q_len, (s + 1) * q_len)."""
    cu, ctx = cu_seqlens(p, buffers), contexts(p, buffers)
    return [Sequence(s, cu[s], cu[s + 1], ctx[s]) for s in range(p["num_seqs"])]


def row_positions(p, buffers):
    """(seq int64 [T], pos int64 [T]): the sequence and the position of every packed query row
    (a vectorized view of sequences(): the mask of row r is keys t <= pos[r] of seq[r])."""
    cu, ctx = cu_seqlens(p, buffers), contexts(p, buffers)
    ql = np.diff(cu)
    seq = np.repeat(np.arange(ql.size, dtype=np.int64), ql)
    i = np.arange(int(cu[-1]), dtype=np.int64) - cu[:-1][seq]
    return seq, ctx[seq] - ql[seq] + i


def token_slots(p, block_tables, context_lens=None, seqs=None, pad_to=None):
    """Physical slots of the logical tokens: (blk, tok, valid), each [n, T].

    block_tables: the launch's Buffers (the page table of either form, padded or CSR, and the
    contexts it implies; context_lens is then ignored), or a padded block table with
    context_lens. Row r is sequence seqs[r] (default all); T = pad_to or that set's max context.
    Tokens past a sequence's context are pointed at its token 0 (valid is False there), and an
    empty sequence's at the first token of the first non-empty one: a gather then reads real
    data, never a poisoned page or a garbage table entry, and the caller masks them."""
    if isinstance(block_tables, Buffers):
        bt, cl = page_table(p, block_tables)
    else:
        bt = np.asarray(host(block_tables)).reshape(-1, p["max_blocks_per_seq"])
        cl = np.asarray(host(context_lens)).reshape(-1).astype(np.int64)
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
    empty = ctx == 0
    if empty.any() and T > 0:
        full = np.nonzero(cl > 0)[0]
        blk[empty] = int(bt[full[0], 0]) if full.size else 0
    return blk, t % B, valid
