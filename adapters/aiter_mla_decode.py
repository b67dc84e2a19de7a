"""aiter_mla_decode_fwd / _page1: AMD aiter's MLA decode, aiter.mla.mla_decode_fwd, over pacheck's
mla_joint layout (the joint latent + rope cache aiter reads as kv_buffer).

UNTESTED ON REAL HARDWARE: written against aiter's public Python signature and checked against
the stub in adapters/tests/stubs/aiter only.

    mla_decode_fwd(q, kv_buffer, o, qo_indptr, kv_indptr, kv_indices, kv_last_page_lens,
        max_seqlen_q, page_size=1, nhead_kv=1, sm_scale=None, logit_cap=0.0,
        num_kv_splits=None, ..., q_scale=None, kv_scale=None, ..., return_lse=False, ...)

One module, two kernels (two forms of the same call):
    aiter_mla_decode_fwd        kv_buffer [NB, B, 1, D]: the K cache's pages as they are (dense
                                pages: page_stride = B * D), the page-level CSR table
                                (kv_indptr / kv_indices in pages, kv_last_page_lens), and
                                page_size=B, nhead_kv=1 as keywords. Needs an aiter whose
                                mla_decode_fwd takes page_size (refused otherwise, naming why).
    aiter_mla_decode_fwd_page1  kv_buffer [rows, 1, 1, D]: the pool as rows of D (page size 1,
                                the form vLLM's ROCm MLA backend passes, kv_buffer.view(-1, 1, 1,
                                D)); kv_indptr / kv_indices per token (row page * page_stride / D
                                + slot, so strided pages work when page_stride is a multiple of
                                D: page_stride_align = D), kv_last_page_lens all 1. Any aiter
                                whose mla_decode_fwd takes qo_indptr.
The rest is common:
    q             [T, Hq, D] (latent then rope: pacheck's q rows as they are); o [T, Hq, Dv]
                  allocated in the q dtype, written in place by aiter, copied back
    qo_indptr     cu_seqlens_q (int32 [S + 1]); max_seqlen_q = q_len (a uniform batch)
    sm_scale      the problem's softmax scale, by keyword (its position moved between releases:
                  page_size and nhead_kv were inserted before it); logit_cap=0.0 by keyword
    the V cache   not read: V is the first Dv of each kv_buffer row (mla_joint's V cache is a
                  byte-identical copy of the K cache)

Confirmed from aiter's source (aiter/mla.py, several revisions): the eight leading positional
parameters above in every revision that has qo_indptr; page_size and nhead_kv as keywords in the
newest (earlier ones read page_size from kv_buffer.shape, and the earliest has no qo_indptr at
all: that one is not supported); the output written into o. Not confirmed: which head counts
every build's asm kernels take (Hq 16 and 128 appear in every revision read; supports() takes
only those) and that Hq 16 takes only q_len 1 (an older revision asserts it; kept); causal masking
among MTP tokens (q_len <= 4 is declared on the newest revision's comments); page sizes other
than 1 and 64 in the paged form (only those two are declared); the LSE (return_lse exists in the
newest revision only, and its base is not stated: lse is not declared); fp8 caches (q_scale /
kv_scale exist in newer revisions, but the fp8 kernels want an fp8 q too: only bf16 is declared).

The call is planned in numpy (plan(); no torch needed: that is what the tests check) and run()
makes it real; aiter is imported inside run(), so the hello works anywhere.
"""
import importlib
import inspect

import numpy as np

import pacheck_adapter as pa

HEADS = (16, 128)  # the query head counts aiter's MLA decode kernels are built for (see above)


def _capability(form):
    return pa.capability(
        q_dtypes=["bf16"], kv_dtypes=["bf16"],
        kv_layouts=["mla_joint"],
        scale_modes=["none"],
        head_sizes=[pa.MLA_HEAD_SIZE], head_sizes_v=[pa.MLA_HEAD_SIZE_V],
        block_sizes=[1, 64] if form == "paged" else [1 << i for i in range(9)],
        max_gqa=128,
        max_q_len=4,  # uniform q_len (MTP decode); no ragged batch declared
        page_tables=["padded", "csr"],
        custom_scale=True,
        strided_pages=form == "page1",
        page_stride_align=pa.MLA_HEAD_SIZE if form == "page1" else 1,
        lse=False,
    )


def why_not(p, form):
    """The reason aiter's mla_decode_fwd cannot run p faithfully in this form, or None."""
    if p["kv_layout"] != "mla_joint":
        return "kv_layout %s: aiter reads one joint kv_buffer (mla_joint)" % p["kv_layout"]
    if p["num_kv_heads"] != 1:
        return "MLA has one latent KV head, not %d" % p["num_kv_heads"]
    if p["q_dtype"] != "bf16" or p["kv_dtype"] != "bf16":
        return "q %s, KV %s: only bf16 / bf16 is declared" % (p["q_dtype"], p["kv_dtype"])
    if p["scale_mode"] != "none":
        return "scale mode %s" % p["scale_mode"]
    Hq = p["num_q_heads"]
    if Hq not in HEADS:
        return "%d query heads: aiter's MLA decode is built for %s" % (Hq, list(HEADS))
    if p.ragged:
        return "a ragged batch: the adapter passes one max_seqlen_q for uniform rows"
    if Hq == 16 and p["q_len"] != 1:
        return "16 heads take q_len 1 only (q_len %d)" % p["q_len"]
    D = p["head_size"]
    if form == "paged" and int(p["page_stride"]) != p.dense_page:
        return "the paged form reads dense pages (page_stride %d != B * D = %d)" % (
            p["page_stride"], p.dense_page)
    if form == "page1" and int(p["page_stride"]) % D:
        return "page_stride %d is not a multiple of D = %d (rows of D)" % (p["page_stride"], D)
    return None


def csr_pages(p, b):
    """(kv_indptr, kv_indices, kv_last_page_lens) int32: the page-level CSR table (the buffers
    for a CSR case, else built from block_tables)."""
    ctx = pa.contexts(p, b)
    B = p["block_size"]
    pages = (ctx + B - 1) // B
    last = np.where(pages > 0, ctx - (pages - 1) * B, 0).astype(np.int32)
    if p.csr:
        return b.kv_indptr, b.kv_indices, b.kv_last_page_len
    table, _ = pa.page_table(p, b)
    indptr = np.concatenate([[0], np.cumsum(pages)]).astype(np.int32)
    used = [table[s, :pages[s]] for s in range(p["num_seqs"])]
    return indptr, np.concatenate(used + [np.zeros(1, np.int64)]).astype(np.int32), last


def csr_tokens(p, b):
    """(kv_indptr, kv_indices, kv_last_page_lens) int32 per token over rows of D: token t of
    sequence s is row page * (page_stride / D) + slot; every "page" holds one token."""
    blk, tok, valid = pa.token_slots(p, b)
    rows = blk * (int(p["page_stride"]) // p["head_size"]) + tok
    ctx = pa.contexts(p, b)
    indptr = np.concatenate([[0], np.cumsum(ctx)]).astype(np.int32)
    indices = np.concatenate([rows[valid], np.zeros(1, np.int64)]).astype(np.int32)
    return indptr, indices, np.ones(p["num_seqs"], np.int32)


def _int32(a, n):
    data = a if pa.is_torch(a) else np.ascontiguousarray(a, dtype=np.int32)
    return pa.TensorSpec([n], "int32", data=data.reshape(-1)[:n])


def plan(p, b, form, has_page_size=True):
    """mla_decode_fwd's arguments in numpy terms: {"args": [(name, value)] positional, "kwargs":
    {name: value}}. form: "paged" or "page1"; has_page_size: the installed function takes
    page_size / nhead_kv (the paged form needs it)."""
    why = why_not(p, form)
    if why is None and form == "paged" and not has_page_size:
        why = ("this aiter's mla_decode_fwd takes no page_size (it reads kv_buffer.shape); "
               "aiter_mla_decode_fwd_page1 runs it")
    if why:
        raise pa.NotSupported(why)
    S, Hq, D, Dv, B = p["num_seqs"], p["num_q_heads"], p["head_size"], p.head_size_v, \
        p["block_size"]
    T, NB = p.total_q, int(p["num_blocks"])
    qt = pa._TORCH_NAMES[p["q_dtype"]]
    if form == "paged":
        kv = pa.TensorSpec([NB, B, 1, D], qt, data=b.k_cache.reshape(-1)[:NB * B * D])
        indptr, indices, last = csr_pages(p, b)
    else:
        rows = pa.pool_elements(p, "k") // D
        kv = pa.TensorSpec([rows, 1, 1, D], qt, data=b.k_cache, strides=[D, D, D, 1])
        indptr, indices, last = csr_tokens(p, b)
    n_idx = int(pa.host(indptr).reshape(-1)[S])
    kwargs = {"sm_scale": pa.softmax_scale(p), "logit_cap": 0.0}
    if has_page_size:
        kwargs.update(page_size=B if form == "paged" else 1, nhead_kv=1)
    return {
        "args": [
            ("q", pa.TensorSpec([T, Hq, D], qt, data=b.rows("q").reshape(-1))),
            ("kv_buffer", kv),
            ("o", pa.TensorSpec([T, Hq, Dv], qt)),
            ("qo_indptr", _int32(pa.cu_seqlens(p, b), S + 1)),
            ("kv_indptr", _int32(indptr, S + 1)),
            ("kv_indices", _int32(indices, max(1, n_idx))),
            ("kv_last_page_lens", _int32(last, S)),
            ("max_seqlen_q", p["q_len"]),
        ],
        "kwargs": kwargs,
    }


def takes_page_size(fn):
    """Whether the installed mla_decode_fwd has the page_size / nhead_kv keywords."""
    try:
        return "page_size" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def call(p, b, mla, form, device=None):
    """Runs plan() on `mla` (the aiter.mla module, or a stub with its names) and copies o back.
    device: torch tensors there; None: numpy arrays (a stub engine in tests without torch)."""
    fn = mla.mla_decode_fwd
    kw = pa.materialise(plan(p, b, form, takes_page_size(fn)), device)
    args = [v for _, v in kw["args"]]
    fn(*args, **kw["kwargs"])
    if device is not None and str(device).startswith("cuda"):
        import torch
        torch.cuda.synchronize()
    pa.store_codes(b.rows("out"), args[2], p["q_dtype"])


def _run(form):
    def run(p, b):
        why = why_not(p, form)
        if why:
            raise pa.NotSupported(why)
        mla = importlib.import_module("aiter.mla")  # lazily: the hello works without aiter
        call(p, b, mla, form, pa.default_device())
    return run


def _supports(form):
    def supports(p):
        why = why_not(p, form)
        return (why is None, why or "")
    return supports


_COMMON = dict(
    version="1",
    memory="device",  # pacheck's device buffers where it has a GPU, else host ones copied over
    # P is rounded to bf16 for the P.V matmul; split-K partials are fp32 (logits / attn_lse).
    numerics=pa.numerics(p_round="as_q", qk_round="fp32", partial_round="fp32"),
)
KERNELS = [
    dict(_COMMON, name="aiter_mla_decode_fwd",
         provenance="AMD aiter aiter.mla.mla_decode_fwd (kv_buffer pages, page_size=B), "
                    "via adapter",
         capability=_capability("paged"), run=_run("paged"), supports=_supports("paged")),
    dict(_COMMON, name="aiter_mla_decode_fwd_page1",
         provenance="AMD aiter aiter.mla.mla_decode_fwd (rows of D, page size 1, as vLLM calls "
                    "it), via adapter",
         capability=_capability("page1"), run=_run("page1"), supports=_supports("page1")),
]
