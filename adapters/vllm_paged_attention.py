"""vllm_paged_attention_v1 / _v2: vLLM's classic paged-attention kernels (torch.ops._C).

UNTESTED ON REAL HARDWARE: written against vLLM's public op signatures and checked against the
stub in adapters/tests/stubs/vllm only.

    paged_attention_v1(out, query, key_cache, value_cache, num_kv_heads, scale, block_tables,
        seq_lens, block_size, max_seq_len, alibi_slopes, kv_cache_dtype, k_scale, v_scale,
        tp_rank, blocksparse_local_blocks, blocksparse_vert_stride, blocksparse_block_size,
        blocksparse_head_sliding_step)
    paged_attention_v2(out, exp_sums, max_logits, tmp_out, <the v1 arguments after out>)

One module, two kernels: KERNELS lists v1 and v2, each with its own name and capability, and the
worker serves both (the request names the kernel). Newer vLLM dropped the four blocksparse
arguments; the adapter reads the op's schema and passes them only where the op declares them.

Layout "vllm": K [NB, Hkv, D/x, B, x], V [NB, Hkv, D, B]. The kernels take the page stride from
key_cache.stride(0), so the caches go to the device as strided views of the whole pool and
strided pages are tested for real. k_scale / v_scale are per-tensor fp32 tensors.

Multi-token decode (q_len > 1) is run faithfully as vLLM's speculative decoding once did: query
token i of sequence s becomes its own row with seq_len p + 1 (p = ctx - q_len + i) and the same
block-table row, so causality is exact. ALiBi adds slope * (j - seq_len + 1) = slope * (j - p),
pacheck's bias.
"""
import math

import numpy as np

import pacheck_adapter as pa

PARTITION_V2 = 512  # vLLM v2's PARTITION_SIZE
_KV_CACHE_DTYPE = {"bf16": "auto", "fp16": "auto", "fp8_e4m3fn": "fp8", "fp8_e4m3fnuz": "fp8",
                   "fp8_e5m2": "fp8_e5m2"}
BLOCKSPARSE = (("blocksparse_local_blocks", 0), ("blocksparse_vert_stride", 0),
               ("blocksparse_block_size", 64), ("blocksparse_head_sliding_step", 0))


def _capability(max_context):
    return pa.capability(
        q_dtypes=["bf16", "fp16"],
        # vLLM also reads fp8_e5m2 caches (kv_cache_dtype="fp8_e5m2", mapped below); declare it
        # once pacheck's parser knows the name: a hello with an unknown name is refused whole.
        kv_dtypes=["bf16", "fp16", "fp8_e4m3fn", "fp8_e4m3fnuz"],
        kv_layouts=["vllm"],
        scale_modes=["none", "per_tensor"],
        head_sizes=[32, 64, 80, 96, 112, 120, 128, 192, 256],
        block_sizes=[8, 16, 32],
        max_gqa=64,
        max_q_len=8,
        max_context=max_context,
        strided_pages=True, custom_scale=True, alibi=True,
        sliding_window=False, logit_softcap=False, sinks=False, lse=False,
    )


def why_not(p, fp8=None):
    kv, q = p["kv_dtype"], p["q_dtype"]
    if kv not in _KV_CACHE_DTYPE:
        return "kv dtype %s" % kv
    if pa.DTYPE_BYTES[kv] == 2:
        if kv != q:
            return "16-bit KV must be the q dtype (kv_cache_dtype=\"auto\"): kv %s, q %s" % (kv, q)
        if p["scale_mode"] != "none":
            return "16-bit KV reads no scales (kv_cache_dtype=\"auto\"): %s" % p["scale_mode"]
    elif kv != "fp8_e5m2":
        native = pa.native_fp8() if fp8 is None else fp8
        if native is None:
            return "fp8 KV needs a GPU to know its native fp8 flavour"
        if kv != native:
            return "%s cache, but kv_cache_dtype=\"fp8\" means %s on this GPU" % (kv, native)
    elif fp8 is None and _is_rocm():
        return "fp8_e5m2 caches are CUDA-only in vLLM"
    return None


def _is_rocm():
    try:
        import torch
        return bool(getattr(torch.version, "hip", None))
    except ImportError:
        return False


def supports(p):
    why = why_not(p)
    return (why is None, why or "")


def rows(p, b):
    """(seq_lens [S*q_len], block_tables [S*q_len, MB]): one row per query token."""
    L = p["q_len"]
    ctx = np.asarray(pa.host(b.context_lens), dtype=np.int64).reshape(-1)
    seq_lens = (ctx[:, None] - L + 1 + np.arange(L)[None, :]).reshape(-1).astype(np.int32)
    bt = np.repeat(np.asarray(pa.host(b.block_tables)).reshape(-1, p["max_blocks_per_seq"]), L, axis=0)
    return seq_lens, np.ascontiguousarray(bt, dtype=np.int32)


def plan(p, b, version, fp8=None):
    """Positional arguments (name, value) of paged_attention_<version>, in numpy terms."""
    why = why_not(p, fp8)
    if why:
        raise pa.NotSupported(why)
    S, L, Hq, H, D, B = p["num_seqs"], p["q_len"], p["num_q_heads"], p["num_kv_heads"], \
        p["head_size"], p["block_size"]
    NB, x, ps = int(p["num_blocks"]), p.x, int(p["page_stride"])
    kv = p["kv_dtype"]
    qt = pa._TORCH_NAMES[p["q_dtype"]]
    # vLLM keeps fp8 caches as uint8 tensors; "auto" caches are the q dtype.
    kv_t = qt if pa.DTYPE_BYTES[kv] == 2 else "uint8"
    seq_lens, bt = rows(p, b)
    R = S * L
    max_seq_len = int(seq_lens.max())
    k_scale = 1.0 if p["scale_mode"] == "none" else float(pa.host(b.k_scales)[0])
    v_scale = 1.0 if p["scale_mode"] == "none" else float(pa.host(b.v_scales)[0])
    args = [("out", pa.TensorSpec([R, Hq, D], qt))]
    if version == "v2":
        parts = int(math.ceil(max_seq_len / float(PARTITION_V2)))
        args += [("exp_sums", pa.TensorSpec([R, Hq, parts], "float32")),
                 ("max_logits", pa.TensorSpec([R, Hq, parts], "float32")),
                 ("tmp_out", pa.TensorSpec([R, Hq, parts, D], qt))]
    args += [
        ("query", pa.TensorSpec([R, Hq, D], qt, data=b.q.reshape(-1))),
        ("key_cache", pa.TensorSpec([NB, H, D // x, B, x], kv_t, data=b.k_cache,
                                    strides=[ps, D * B, B * x, x, 1])),
        ("value_cache", pa.TensorSpec([NB, H, D, B], kv_t, data=b.v_cache,
                                      strides=[ps, D * B, B, 1])),
        ("num_kv_heads", H),
        ("scale", pa.softmax_scale(p)),
        ("block_tables", pa.TensorSpec(bt.shape, "int32", data=bt.reshape(-1))),
        ("seq_lens", pa.TensorSpec([R], "int32", data=seq_lens)),
        ("block_size", B),
        ("max_seq_len", max_seq_len),
        ("alibi_slopes", pa.TensorSpec([Hq], "float32", data=np.asarray(pa.host(b.alibi_slopes)))
         if p["has_alibi"] else None),
        ("kv_cache_dtype", _KV_CACHE_DTYPE[kv]),
        ("k_scale", pa.TensorSpec([1], "float32", data=np.array([k_scale], np.float32))),
        ("v_scale", pa.TensorSpec([1], "float32", data=np.array([v_scale], np.float32))),
        ("tp_rank", 0),
    ] + list(BLOCKSPARSE)
    return args


def _ops():
    """The op namespace: importing vllm._C registers torch.ops._C. A pure-Python vllm._C that
    defines the functions itself (the tests' stub) is used directly."""
    import vllm._C as ext
    if hasattr(ext, "paged_attention_v1"):
        return ext
    import torch
    return torch.ops._C


def _arg_names(op):
    """Argument names the op declares (schema of a torch op, signature of a Python function)."""
    try:
        return [a.name for a in op.default._schema.arguments]
    except AttributeError:
        import inspect
        return list(inspect.signature(op).parameters)


def _run(p, b, version):
    args = plan(p, b, version)
    ops = _ops()
    import torch
    op = getattr(ops, "paged_attention_" + version)
    names = set(_arg_names(op))
    dev = pa.default_device()
    values = [v.to_torch(dev) if isinstance(v, pa.TensorSpec) else v
              for n, v in args if not n.startswith("blocksparse_") or n in names]
    op(*values)
    if values[0].is_cuda:
        torch.cuda.synchronize()
    pa.store_codes(b.out, values[0].reshape(b.out.shape), p["q_dtype"])


def run_v1(p, b):
    _run(p, b, "v1")


def run_v2(p, b):
    _run(p, b, "v2")


_COMMON = dict(
    version="1",
    memory="device",  # pacheck's device buffers where it has a GPU, else host ones copied over
    # P is rounded to the q dtype before P.V (logits converted to scalar_t), fp8 K is dequantized
    # to the q dtype before Q.K; v2 stores its partial outputs (tmp_out) in the q dtype.
    supports=supports,
)
KERNELS = [
    dict(_COMMON, name="vllm_paged_attention_v1",
         provenance="vLLM torch.ops._C.paged_attention_v1, via adapter",
         # v1 keeps the whole context's logits in shared memory; vLLM itself uses v1 only up to
         # 8192 tokens.
         capability=_capability(8192),
         numerics=pa.numerics(p_round="as_q", qk_round="as_q", partial_round="fp32"),
         run=run_v1),
    dict(_COMMON, name="vllm_paged_attention_v2",
         provenance="vLLM torch.ops._C.paged_attention_v2, via adapter",
         capability=_capability(0),
         numerics=pa.numerics(p_round="as_q", qk_round="as_q", partial_round="as_q"),
         run=run_v2),
]
