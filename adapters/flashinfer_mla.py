"""flashinfer_mla: FlashInfer's MLA decode wrapper, flashinfer.mla.BatchMLAPagedAttentionWrapper,
over pacheck's MLA layouts (mla_split natively, mla_joint through strided views of its rows).

UNTESTED ON REAL HARDWARE: written against FlashInfer's public Python signature and checked
against the stub in adapters/tests/stubs/flashinfer only.

    BatchMLAPagedAttentionWrapper(float_workspace_buffer, use_cuda_graph=False, qo_indptr=None,
        kv_indptr=None, kv_indices=None, kv_len_arr=None, backend="auto")
    .plan(qo_indptr, kv_indptr, kv_indices, kv_len_arr, num_heads, head_dim_ckv, head_dim_kpe,
        page_size, causal, sm_scale, q_data_type, kv_data_type, use_profiler=False)
    .run(q_nope, q_pe, ckv_cache, kpe_cache, out=None, lse=None, return_lse=False,
        profiler_buffer=None, kv_len=None, page_table=None, return_lse_base_on_e=False)

The argument mapping:
    qo_indptr     cu_seqlens_q (int32 [S + 1]; the uniform rows s * q_len without a ragged batch)
    kv_indptr, kv_indices   the CSR page table as pacheck hands it over, or built from the padded
                  block_tables (each sequence's ceil(ctx / B) pages)
    kv_len_arr    each sequence's context (int32 [S]; with CSR: (pages - 1) * B + kv_last_page_len)
    num_heads     Hq;  head_dim_ckv = Dv (512);  head_dim_kpe = D - Dv (64);  page_size = B
    causal        True: query token i of a sequence sits at ctx - q_len + i (FlashInfer aligns its
                  causal mask to the bottom right, as pacheck does; a decode row sees its context)
    sm_scale      the problem's softmax scale (MLA's is 1/sqrt(192), not 1/sqrt(576))
    q_nope, q_pe  strided views of q [T, Hq, D]: its first Dv and its last D - Dv columns (the
                  kernel reads q_nope.stride(0)/(1) and q_pe's: no copy)
    ckv_cache, kpe_cache  [NB, B, Dv] and [NB, B, D - Dv] views of the pool:
                  mla_split  ckv = the V cache (strides page_stride_v, Dv, 1), kpe = the K cache
                             (strides page_stride, D - Dv, 1)
                  mla_joint  both of the K cache's [B][D] rows: ckv its first Dv columns, kpe the
                             rest (strides page_stride, D, 1), as vLLM hands FlashInfer its joint
                             cache; the V cache (a byte-identical copy) is not read
    out, lse      [T, Hq, Dv] in the q dtype, [T, Hq] float32; return_lse = want_lse. FlashInfer's
                  MLA LSE is base 2 unless return_lse_base_on_e=True, so the capability declares
                  lse_base 2 and the argument is left at its default.

Confirmed from FlashInfer's source (flashinfer/mla.py, csrc/batch_mla_run.cu and
batch_mla_sm90_run.cu, one recent revision each): the names and order above, that the run kernel
takes the page and token strides of ckv_cache / kpe_cache and the row and head strides of q_nope /
q_pe from the tensors (so the strided views are read as they are), and the base-2 LSE default.
Not confirmed: whether older releases (before return_lse_base_on_e) also wrote base 2 (assumed:
the kernel works in log2 internally); the page sizes and head counts every backend takes
(block_sizes [1, 16, 32, 64] and Hq <= 128 are declared); how a sequence of context 0 is written
(not declared: empty_rows False); fp8 caches (the Python run() of the revision read takes no KV
scale, so only 16-bit KV equal to the q dtype is declared).

The call is planned in numpy (plan(); no torch needed: that is what the tests check) and run()
makes it real; flashinfer is imported inside run(), so the hello works anywhere.
"""
import importlib
import os

import numpy as np

import pacheck_adapter as pa

NAME = "flashinfer_mla"
VERSION = "1"
PROVENANCE = "FlashInfer flashinfer.mla.BatchMLAPagedAttentionWrapper (plan/run), via adapter"
MEMORY = "device"  # pacheck's device buffers where it has a GPU, else host ones copied over
BACKEND = os.environ.get("PACHECK_FLASHINFER_MLA_BACKEND", "auto")
WORKSPACE_BYTES = 128 << 20  # FlashInfer's recommended float workspace
CAPABILITY = pa.mla_capability(
    kv_dtypes=["bf16", "fp16"],  # 16-bit KV, the q dtype (checked in why_not)
    scale_modes=["none"],
    block_sizes=[1, 16, 32, 64],
    page_stride_align=8,  # 16-byte rows: a page starts on a 16-byte boundary
    empty_rows=False,
    lse_base=2,
)
# P is rounded to the q dtype for the P.V matmul; split-K partial outputs live in the output
# dtype (partial_o is DTypeO) before the merge.
NUMERICS = pa.numerics(p_round="as_q", qk_round="fp32", partial_round="as_q")


def why_not(p):
    """The reason FlashInfer's MLA wrapper cannot run p faithfully, or None."""
    if not p.mla:
        return "kv_layout %s: the MLA wrapper reads ckv/kpe caches only" % p["kv_layout"]
    if p["num_kv_heads"] != 1:
        return "MLA has one latent KV head, not %d" % p["num_kv_heads"]
    if p["kv_dtype"] != p["q_dtype"]:
        return "KV dtype %s must be the q dtype %s (no KV scale in run())" % (p["kv_dtype"],
                                                                               p["q_dtype"])
    if p["scale_mode"] != "none":
        return "scale mode %s: run() takes no KV scale" % p["scale_mode"]
    if not 0 < p.head_size_v < p["head_size"]:
        return "head_dim_kpe = D - Dv must be positive (D %d, Dv %d)" % (p["head_size"],
                                                                        p.head_size_v)
    return None


def supports(p):
    why = why_not(p)
    return (why is None, why or "")


def csr_table(p, b):
    """(kv_indptr int32 [S + 1], kv_indices int32 [>= kv_indptr[S]], kv_len_arr int32 [S]): the
    buffers themselves for a CSR case, else built from the padded block table."""
    ctx = pa.contexts(p, b).astype(np.int32)
    if p.csr:
        indices = b.kv_indices
        if indices is None:  # no page at all (every sequence empty)
            indices = np.zeros(1, np.int32)
        return b.kv_indptr, indices, ctx
    table, _ = pa.page_table(p, b)
    B = p["block_size"]
    pages = (ctx.astype(np.int64) + B - 1) // B
    indptr = np.concatenate([[0], np.cumsum(pages)]).astype(np.int32)
    used = [table[s, :pages[s]] for s in range(p["num_seqs"])]
    indices = np.concatenate(used + [np.zeros(1, np.int64)]).astype(np.int32)  # + one spare
    return indptr, indices, ctx


def _int32(a, n=None):
    """TensorSpec of an int32 array (a numpy array, or a device buffer used as it is)."""
    data = a if pa.is_torch(a) else np.ascontiguousarray(a, dtype=np.int32)
    n = int(data.shape[0]) if n is None else n
    return pa.TensorSpec([n], "int32", data=data.reshape(-1)[:n])


def plan(p, b):
    """The wrapper's three calls in numpy terms: {"init": kwargs of the constructor, "plan":
    [(name, value)] positional arguments of plan(), "run": [(name, value)] of run(), the first
    four positional and the rest keywords}. TensorSpec stands for a tensor, pa.DType for a torch
    dtype."""
    why = why_not(p)
    if why:
        raise pa.NotSupported(why)
    S, Hq, D, Dv, B = p["num_seqs"], p["num_q_heads"], p["head_size"], p.head_size_v, \
        p["block_size"]
    R, T, NB = D - Dv, p.total_q, int(p["num_blocks"])
    qt = pa._TORCH_NAMES[p["q_dtype"]]
    kv_t = pa._TORCH_NAMES[p["kv_dtype"]]
    indptr, indices, kv_len = csr_table(p, b)
    cu = pa.cu_seqlens(p, b).astype(np.int32)
    q = b.rows("q").reshape(-1)
    ps, ps_v = int(p["page_stride"]), p.page_stride_v
    if p["kv_layout"] == "mla_split":
        ckv = pa.TensorSpec([NB, B, Dv], kv_t, data=b.v_cache, strides=[ps_v, Dv, 1])
        kpe = pa.TensorSpec([NB, B, R], kv_t, data=b.k_cache, strides=[ps, R, 1])
    else:  # mla_joint: both views of the K cache's rows of D
        ckv = pa.TensorSpec([NB, B, Dv], kv_t, data=b.k_cache, strides=[ps, D, 1])
        kpe = pa.TensorSpec([NB, B, R], kv_t, data=b.k_cache[Dv:], strides=[ps, D, 1])
    want_lse = b.lse is not None
    return {
        "init": {"float_workspace_buffer": pa.TensorSpec([WORKSPACE_BYTES], "uint8"),
                 "backend": BACKEND},
        "plan": [
            ("qo_indptr", _int32(cu, S + 1)),
            ("kv_indptr", _int32(indptr, S + 1)),
            ("kv_indices", _int32(indices)),
            ("kv_len_arr", _int32(kv_len, S)),
            ("num_heads", Hq),
            ("head_dim_ckv", Dv),
            ("head_dim_kpe", R),
            ("page_size", B),
            ("causal", True),
            ("sm_scale", pa.softmax_scale(p)),
            ("q_data_type", pa.DType(qt)),
            ("kv_data_type", pa.DType(kv_t)),
        ],
        "run": [
            ("q_nope", pa.TensorSpec([T, Hq, Dv], qt, data=q, strides=[Hq * D, D, 1])),
            ("q_pe", pa.TensorSpec([T, Hq, R], qt, data=q[Dv:], strides=[Hq * D, D, 1])),
            ("ckv_cache", ckv),
            ("kpe_cache", kpe),
            ("out", pa.TensorSpec([T, Hq, Dv], qt)),
            ("lse", pa.TensorSpec([T, Hq], "float32") if want_lse else None),
            ("return_lse", want_lse),
        ],
    }


def call(p, b, mla, device=None):
    """Runs plan(p, b) on `mla` (the flashinfer.mla module, or a stub with its names) and writes
    out (and lse) back. device: torch tensors there; None: numpy arrays (a stub engine in tests
    without torch)."""
    args = pa.materialise(plan(p, b), device)
    init = dict(args["init"])
    wrapper = mla.BatchMLAPagedAttentionWrapper(init.pop("float_workspace_buffer"), **init)
    wrapper.plan(*[v for _, v in args["plan"]])
    run_args = args["run"]
    wrapper.run(*[v for _, v in run_args[:4]], **dict(run_args[4:]))
    out, lse = dict(run_args)["out"], dict(run_args)["lse"]
    if device is not None and str(device).startswith("cuda"):
        import torch
        torch.cuda.synchronize()
    pa.store_codes(b.rows("out"), out, p["q_dtype"])
    if lse is not None:
        pa.store_float32(b.rows("lse"), lse)


def run(p, b):
    why = why_not(p)
    if why:
        raise pa.NotSupported(why)
    mla = importlib.import_module("flashinfer.mla")  # lazily: the hello works without flashinfer
    call(p, b, mla, pa.default_device())
