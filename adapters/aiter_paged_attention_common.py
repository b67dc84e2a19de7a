"""aiter_paged_attention_common: AMD aiter's `paged_attention_common` (the entry vLLM calls with
VLLM_ROCM_SHUFFLE_KV_CACHE_LAYOUT=1), which routes each call to the asm kernel or to the HIP
`paged_attention_rocm` kernel.

UNTESTED ON REAL HARDWARE: written against aiter's public signature and checked against the stub
in adapters/tests/stubs/aiter only.

    paged_attention_common(Q, K, V, exp_sums, max_logits, tmp_out, block_tables, context_lens,
        block_tables_stride0, scale, max_qlen=1, max_seq_len=1, K_QScale_hip=None,
        V_QScale_hip=None, K_QScale_asm=None, V_QScale_asm=None, out_=None, qo_indptr=None,
        high_precision=1, kernelName=None, kv_cache_dtype="auto", kv_cache_tensor_dtype=None)

Its routing (aiter's _should_use_asm_kernel): head_size != 128 -> HIP; high_precision == 2 -> asm;
int8 KV -> asm; else asm iff num_seqs * Hq > 2 * CUs. The two branches want their scales in
different forms, so the adapter always passes both:
    HIP  K_QScale_hip/V_QScale_hip: numel 1 = per tensor, numel NB*Hkv*B = per token
    asm  K_QScale_asm/V_QScale_asm: fp32 [NB, Hkv, B] contiguous; a per-tensor scale is
         materialised to that shape (asm has no per-tensor form). 16-bit KV: None.
The asm kernel ignores `scale` (it uses 1/sqrt(D)), so a custom softmax scale is not declared.
The HIP branch needs kv_cache_dtype="fp8" for an fp8 cache ("auto" reads the bytes as garbage).

The call is planned in numpy (plan(), no torch needed: that is what the tests check) and run()
turns the plan into device tensors. aiter is imported inside run(), so the hello works anywhere.
"""
import math
import os

import numpy as np

import pacheck_adapter as pa

NAME = "aiter_paged_attention_common"
VERSION = "1"
PROVENANCE = "AMD aiter paged_attention_common (asm / HIP paged_attention_rocm), via adapter"
# The worker hands host buffers; run() copies them to the GPU and the result back.
MEMORY = "device"  # pacheck's device buffers where it has a GPU, else host ones copied over
CAPABILITY = pa.capability(
    q_dtypes=["bf16", "fp16"],
    # Both fp8 flavours are declared; supports() keeps the one the GPU reads natively.
    kv_dtypes=["bf16", "fp16", "fp8_e4m3fn", "fp8_e4m3fnuz"],
    kv_layouts=["shuffled"],
    scale_modes=["none", "per_tensor", "per_token_block_major"],
    head_sizes=[64, 128, 256],
    block_sizes=[16, 32],
    max_gqa=16,
    max_q_len=1,  # the HIP branch is called with mtp=1; MTP through qo_indptr is asm-only
    lse=False, custom_scale=False, strided_pages=False,
)
# Both branches round P to the q dtype (matrix-core input) and the dequantized K to the q dtype;
# the HIP branch keeps its split-K partials (tmp_out) in the output dtype.
NUMERICS = pa.numerics(p_round="as_q", qk_round="as_q", partial_round="as_q")

HIGH_PRECISION = 1
PARTITION = 256  # aiter's HIP partition: exp_sums/max_logits/tmp_out have ceil(max_seq_len/256)
_FP8_TORCH = {"fp8_e4m3fn": "float8_e4m3fn", "fp8_e4m3fnuz": "float8_e4m3fnuz"}


class DType(object):
    """A torch dtype named in a plan (resolved by run())."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "DType(%s)" % self.name


def compute_units():
    """CUs of GPU 0 (PACHECK_AITER_CUS overrides; 304, an MI300X, without a GPU)."""
    env = os.environ.get("PACHECK_AITER_CUS")
    if env:
        return int(env)
    try:
        import torch
        if torch.cuda.is_available():
            return torch.cuda.get_device_properties(0).multi_processor_count
    except ImportError:
        pass
    return 304


def branch(p, cus=None, high_precision=HIGH_PRECISION):
    """"asm" or "hip": aiter's routing for this problem (Q is [num_seqs, Hq, D])."""
    if p["head_size"] != 128:
        return "hip"
    if high_precision == 2 or p["kv_dtype"] == "int8":
        return "asm"
    cus = compute_units() if cus is None else cus
    return "asm" if p["num_seqs"] * p["num_q_heads"] > 2 * cus else "hip"


def why_not(p, cus=None, fp8=None):
    """The reason aiter cannot run p faithfully, or None."""
    kv, q = p["kv_dtype"], p["q_dtype"]
    if kv in _FP8_TORCH:
        native = pa.native_fp8() if fp8 is None else fp8
        if native is None:
            return "fp8 KV needs a GPU to know its native fp8 flavour"
        if kv != native:
            return "%s cache, but this GPU reads %s natively" % (kv, native)
    elif kv != q:
        return "16-bit KV must be the q dtype (kv_cache_dtype=\"auto\"): kv %s, q %s" % (kv, q)
    if pa.DTYPE_BYTES[kv] == 2 and p["scale_mode"] != "none":
        return "16-bit KV reads no scales (kv_cache_dtype=\"auto\"): %s" % p["scale_mode"]
    if p["page_stride"] != p.dense_page:
        return "aiter reads dense pages (page_stride %d != %d)" % (p["page_stride"], p.dense_page)
    if p["q_len"] != 1:
        return "q_len %d: the adapter calls plain decode (q_len 1)" % p["q_len"]
    if branch(p, cus) == "asm":
        if p["block_size"] != 16:
            return "the asm branch is built for block 16 (B = %d)" % p["block_size"]
    return None


def supports(p):
    why = why_not(p)
    return (why is None, why or "")


def _scales(p, scales):
    """(hip, asm) TensorSpecs of one scale tensor; see the module doc for the two forms."""
    NB, H, B = int(p["num_blocks"]), p["num_kv_heads"], p["block_size"]
    mode, eight_bit = p["scale_mode"], pa.DTYPE_BYTES[p["kv_dtype"]] == 1
    if mode in ("none", "per_tensor"):
        s = 1.0 if mode == "none" else float(pa.host(scales[:1])[0])
        hip = pa.TensorSpec([1], "float32", data=np.array([s], dtype=np.float32))
        asm = None
        if eight_bit:
            asm = pa.TensorSpec([NB, H, B], "float32",
                                data=np.full(NB * H * B, s, dtype=np.float32))
        return hip, asm
    if mode == "per_token_block_major":
        head = scales[:NB * H * B]
        t = pa.TensorSpec([NB, H, B], "float32", data=head if pa.is_torch(head) else np.asarray(head))
        return t, t
    raise pa.NotSupported("scale mode %s" % mode)


def plan(p, b, cus=None, fp8=None):
    """The keyword arguments of paged_attention_common for this launch, in numpy terms:
    TensorSpec for tensors, DType for torch dtypes, plain values for the rest."""
    why = why_not(p, cus, fp8)
    if why:
        raise pa.NotSupported(why)
    S, Hq, H, D, B = p["num_seqs"], p["num_q_heads"], p["num_kv_heads"], p["head_size"], \
        p["block_size"]
    NB, x, MB = int(p["num_blocks"]), p.x, p["max_blocks_per_seq"]
    kv = p["kv_dtype"]
    kv_t = _FP8_TORCH.get(kv, pa._TORCH_NAMES[kv])
    qt = pa._TORCH_NAMES[p["q_dtype"]]
    page = NB * H * B * D
    max_seq_len = int(p["max_context"]) or int(np.max(pa.host(b.context_lens)))
    parts = int(math.ceil(max_seq_len / float(PARTITION)))
    k_hip, k_asm = _scales(p, b.k_scales)
    v_hip, v_asm = _scales(p, b.v_scales)
    return {
        "Q": pa.TensorSpec([S, Hq, D], qt, data=b.q.reshape(-1)),
        "K": pa.TensorSpec([NB, H, D // x, B, x], kv_t, data=b.k_cache[:page]),
        "V": pa.TensorSpec([NB, H, B // x, D, x], kv_t, data=b.v_cache[:page]),
        "exp_sums": pa.TensorSpec([S, Hq, parts], "float32"),
        "max_logits": pa.TensorSpec([S, Hq, parts], "float32"),
        "tmp_out": pa.TensorSpec([S, Hq, parts, D], qt),
        "block_tables": pa.TensorSpec([S, MB], "int32", data=b.block_tables.reshape(-1)),
        "context_lens": pa.TensorSpec([S], "int32", data=b.context_lens.reshape(-1)),
        "block_tables_stride0": MB,
        "scale": pa.softmax_scale(p),
        "max_qlen": 1,
        "max_seq_len": max_seq_len,
        "K_QScale_hip": k_hip, "V_QScale_hip": v_hip,
        "K_QScale_asm": k_asm, "V_QScale_asm": v_asm,
        "out_": pa.TensorSpec([S, Hq, D], qt),
        "qo_indptr": None,
        "high_precision": HIGH_PRECISION,
        "kernelName": None,
        "kv_cache_dtype": "fp8" if kv in _FP8_TORCH else "auto",
        "kv_cache_tensor_dtype": DType(kv_t),
    }


def materialise(plan_kwargs, device):
    """The plan as torch objects on `device` (one device tensor per distinct TensorSpec)."""
    import torch
    made, out = {}, {}
    for k, v in plan_kwargs.items():
        if isinstance(v, pa.TensorSpec):
            if id(v) not in made:
                made[id(v)] = v.to_torch(device)
            v = made[id(v)]
        elif isinstance(v, DType):
            v = getattr(torch, v.name)
        out[k] = v
    return out


def run(p, b):
    kw = plan(p, b)
    import aiter  # lazily: the hello must work where aiter is not installed
    import torch
    dev = pa.default_device()
    args = materialise(kw, dev)
    res = aiter.paged_attention_common(**args)
    out = res if isinstance(res, torch.Tensor) else args["out_"]
    if out.is_cuda:
        torch.cuda.synchronize()
    pa.store_codes(b.out, out.reshape(b.out.shape), p["q_dtype"])
