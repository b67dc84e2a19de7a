"""torch_sdpa: torch.nn.functional.scaled_dot_product_attention over the gathered paged cache.

The pages are gathered on the adapter's device (pacheck_adapter.gather_kv_torch: the pool copied
once, one indexed read through the layout formula, the codes decoded and scaled in fp32 there;
cuda when torch sees one, else cpu; PACHECK_ADAPTER_DEVICE overrides) into the logical
[S, Hkv, T, D] keys and values.

SDPA runs on the memory-efficient or the math backend, never cuDNN's: cuDNN builds an execution
plan for every new shape (0.5-2 s each on an H100), and pacheck's cases are all new shapes.

What SDPA can express faithfully, and so what is declared:
    causal among the q_len new tokens, sliding window   a boolean mask, folded into a float bias
    ALiBi                                               the same float bias: slope * (t - p)
    sinks                                               one extra key column of zeros (logit 0)
                                                        whose bias is the sink, with a zero V row
    custom softmax scale                                scale=
    LSE                                                 logsumexp of the same biased logits
Not declared: logit soft-cap (tanh of the logits cannot be an additive mask).

Numerics: on cuda it computes in the q dtype (the fused kernels round P to it, and the
dequantized K and V are rounded to it); on cpu, and with ALiBi or sinks (whose float bias would
be rounded to the q dtype), in fp32. The declaration covers the looser one.
"""
import numpy as np

import pacheck_adapter as pa

NAME = "torch_sdpa"
VERSION = "1"
MEMORY = "device"  # pacheck's device buffers when it has a GPU (else host views, copied here)
CAPABILITY = pa.broad_capability(logit_softcap=False)
NUMERICS = pa.numerics(p_round="as_q", qk_round="as_q", partial_round="fp32")

try:
    import torch
    PROVENANCE = "torch %s scaled_dot_product_attention" % torch.__version__
except ImportError:  # the hello still works; run() then refuses
    torch = None
    PROVENANCE = "torch scaled_dot_product_attention (torch not installed)"


def supports(p):
    if torch is None or not hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        return False, "torch with scaled_dot_product_attention is not installed"
    return True, ""


def gather_dense(p, b, dev, dtype):
    """(k, v) as [S, Hkv, T, D] tensors of `dtype` on dev, T = the longest context; positions
    past a context hold that sequence's token 0 (masked by the caller)."""
    k, v, _ = pa.gather_kv_torch(p, b, dev)  # float32 [S, T, Hkv, D], gathered on dev
    return [x.to(dtype).permute(0, 2, 1, 3).contiguous() for x in (k, v)]


def sdpa_backends():
    """The SDPA backends to allow: all but cuDNN (see the module's text)."""
    from torch.nn.attention import SDPBackend
    return [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]


def bias(p, b, T, dev):
    """float32 [S, Hq, q_len, T (+1 with sinks)]: -inf where a key is not visible, ALiBi, and
    the sink column."""
    S, L, Hq = p["num_seqs"], p["q_len"], p["num_q_heads"]
    ctx = torch.from_numpy(np.asarray(pa.host(b.context_lens), dtype=np.int64)).to(dev)
    pos = ctx[:, None] - L + torch.arange(L, device=dev)[None, :]  # [S, L]
    t = torch.arange(T, device=dev)[None, None, :]
    vis = t <= pos[..., None]
    if p["sliding_window"] > 0:
        vis = vis & (t > pos[..., None] - p["sliding_window"])
    zero = torch.zeros((), device=dev)
    m = torch.where(vis, zero, torch.full((), float("-inf"), device=dev))[:, None]  # [S,1,L,T]
    m = m.expand(S, Hq, L, T)
    if p["has_alibi"]:
        sl = pa.to_torch(b.alibi_slopes, dev).float()
        m = m + sl[None, :, None, None] * (t - pos[..., None])[:, None].float()
    if p["has_sinks"]:
        sk = pa.to_torch(b.sinks, dev).float()
        m = torch.cat([m, sk[None, :, None, None].expand(S, Hq, L, 1)], dim=-1)
    return m.contiguous()


def run(p, b):
    ok, why = supports(p)
    if not ok:
        raise pa.NotSupported(why)
    import torch.nn.functional as F
    dev = pa.default_device()
    # A float mask must have the query's dtype: ALiBi and sink biases in bf16 would be rounded
    # (a bias of -500.5 is not a bf16), so those cases compute in fp32.
    exact_bias = p["has_alibi"] or p["has_sinks"]
    cdt = pa.torch_dtype(p["q_dtype"]) if dev != "cpu" and not exact_bias else torch.float32
    S, L, Hq, Hkv, D = p["num_seqs"], p["q_len"], p["num_q_heads"], p["num_kv_heads"], \
        p["head_size"]
    G = Hq // Hkv
    scale = pa.softmax_scale(p)
    q = pa.to_torch(b.q, dev, p["q_dtype"]).to(cdt).permute(0, 2, 1, 3)  # [S, Hq, L, D]
    k, v = gather_dense(p, b, dev, cdt)
    T = k.shape[2]
    if p["has_sinks"]:  # a zero key (logit 0 + bias = the sink) and a zero value row
        pad = torch.zeros(S, Hkv, 1, D, dtype=cdt, device=dev)
        k, v = torch.cat([k, pad], 2), torch.cat([v, pad], 2)
    # Query head h reads KV head h / G: repeat_interleave, not repeat (which would be h % Hkv).
    k, v = k.repeat_interleave(G, dim=1), v.repeat_interleave(G, dim=1)
    mask = bias(p, b, T, dev)
    from torch.nn.attention import sdpa_kernel
    with sdpa_kernel(sdpa_backends()):
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(cdt), scale=scale)
    pa.store_codes(b.out, o.permute(0, 2, 1, 3), p["q_dtype"])
    if b.lse is not None:
        x = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale + mask
        pa.store_float32(b.lse, torch.logsumexp(x, dim=-1).permute(0, 2, 1))
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
