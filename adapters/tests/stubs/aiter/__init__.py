"""Stub of aiter for the adapter tests: records each paged_attention_common call and writes a
deterministic output (out_ = Q), so a test can check both what the adapter passed and that it
copied the result back. Not aiter: no attention is computed. aiter.mla (stubs/aiter/mla.py) is
the MLA decode entry's stub; it works without torch, so this package imports torch only where it
is installed (paged_attention_common needs it)."""
try:
    import torch
except ImportError:
    torch = None

CALLS = []
# The signature the adapter is written against (keyword names and defaults).
_DEFAULTS = dict(max_qlen=1, max_seq_len=1, K_QScale_hip=None, V_QScale_hip=None,
                 K_QScale_asm=None, V_QScale_asm=None, out_=None, qo_indptr=None,
                 high_precision=1, kernelName=None, kv_cache_dtype="auto",
                 kv_cache_tensor_dtype=None)
_REQUIRED = ("Q", "K", "V", "exp_sums", "max_logits", "tmp_out", "block_tables", "context_lens",
             "block_tables_stride0", "scale")


def describe(v):
    """What a test checks about one argument: a tensor's shape/dtype/strides/device, or the
    value itself."""
    if torch is not None and isinstance(v, torch.Tensor):
        return {"shape": tuple(v.shape), "dtype": str(v.dtype).replace("torch.", ""),
                "stride": tuple(v.stride()), "numel": v.numel(), "device": v.device.type,
                "contiguous": v.is_contiguous(), "tensor": v}
    if torch is not None and isinstance(v, torch.dtype):
        return str(v).replace("torch.", "")
    return v


def paged_attention_common(**kw):
    unknown = set(kw) - set(_REQUIRED) - set(_DEFAULTS)
    missing = set(_REQUIRED) - set(kw)
    if unknown or missing:
        raise TypeError("paged_attention_common: unknown %s, missing %s"
                        % (sorted(unknown), sorted(missing)))
    args = dict(_DEFAULTS, **kw)
    CALLS.append({k: describe(v) for k, v in args.items()})
    out = args["out_"] if args["out_"] is not None else torch.empty_like(args["Q"])
    out.copy_(args["Q"])
    return out
