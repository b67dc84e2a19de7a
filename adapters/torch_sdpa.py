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
    the ragged family (ABI 1.2)                         one SDPA call per sequence over its own
                                                        query rows and context; either page table
                                                        (the gather decodes CSR); Dv != D (V has
                                                        its own head size); empty sequences
                                                        written directly (O = 0, LSE = -inf or
                                                        the sink)
Not declared: logit soft-cap (tanh of the logits cannot be an additive mask).

Numerics: on cuda it computes in the q dtype (the fused kernels round P to it, and the
dequantized K and V are rounded to it); on cpu, and with ALiBi or sinks (whose float bias would
be rounded to the q dtype), in fp32. The declaration covers the looser one.
"""

import pacheck_adapter as pa

NAME = "torch_sdpa"
VERSION = "1"
MEMORY = "device"  # pacheck's device buffers when it has a GPU (else host views, copied here)
CAPABILITY = pa.broad_capability(logit_softcap=False, **pa.ragged_capability())
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
    """(k [S, Hkv, T, D], v [S, Hkv, T, Dv]) tensors of `dtype` on dev, T = the longest context
    (either page table); positions past a context hold real data (masked by the caller)."""
    k, v, _ = pa.gather_kv_torch(p, b, dev)  # float32 [S, T, Hkv, D|Dv], gathered on dev
    return [x.to(dtype).permute(0, 2, 1, 3).contiguous() for x in (k, v)]


def sdpa_backends():
    """The SDPA backends to allow: all but cuDNN (see the module's text)."""
    from torch.nn.attention import SDPBackend
    return [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]


def bias(p, b, seq, dev):
    """float32 [1, Hq, q_len, ctx (+1 with sinks)] of one sequence (pa.Sequence): -inf where a
    key is not visible, ALiBi, and the sink column."""
    Hq, L, T = p["num_q_heads"], seq.q_len, seq.ctx
    pos = torch.from_numpy(seq.positions()).to(dev)  # [L]
    t = torch.arange(T, device=dev)[None, :]
    vis = t <= pos[:, None]
    if p["sliding_window"] > 0:
        vis = vis & (t > pos[:, None] - p["sliding_window"])
    zero = torch.zeros((), device=dev)
    m = torch.where(vis, zero, torch.full((), float("-inf"), device=dev))[None, None]  # [1,1,L,T]
    m = m.expand(1, Hq, L, T)
    if p["has_alibi"]:
        sl = pa.to_torch(b.alibi_slopes, dev).float()
        m = m + sl[None, :, None, None] * (t - pos[:, None])[None, None].float()
    if p["has_sinks"]:
        sk = pa.to_torch(b.sinks, dev).float()
        m = torch.cat([m, sk[None, :, None, None].expand(1, Hq, L, 1)], dim=-1)
    return m.contiguous()


def empty_rows(p, b, L, dev):
    """(out [L, Hq, Dv] zeros, lse [L, Hq]) of a sequence of context 0: it sees no key, so
    O = 0 and LSE = -inf, or the sink's logit (the sink alone is left in the denominator)."""
    Hq = p["num_q_heads"]
    o = torch.zeros(L, Hq, p.head_size_v, device=dev)
    if p["has_sinks"]:
        lse = pa.to_torch(b.sinks, dev).float()[None, :].expand(L, Hq)
    else:
        lse = torch.full((L, Hq), float("-inf"), device=dev)
    return o, lse


def run(p, b):
    ok, why = supports(p)
    if not ok:
        raise pa.NotSupported(why)
    import torch.nn.functional as F
    from torch.nn.attention import sdpa_kernel
    dev = pa.default_device()
    # A float mask must have the query's dtype: ALiBi and sink biases in bf16 would be rounded
    # (a bias of -500.5 is not a bf16), so those cases compute in fp32.
    exact_bias = p["has_alibi"] or p["has_sinks"]
    cdt = pa.torch_dtype(p["q_dtype"]) if dev != "cpu" and not exact_bias else torch.float32
    Hq, Hkv, Dv = p["num_q_heads"], p["num_kv_heads"], p.head_size_v
    G = Hq // Hkv
    scale = pa.softmax_scale(p)
    q = pa.to_torch(b.rows("q"), dev, p["q_dtype"]).to(cdt)  # [T, Hq, D], packed rows
    k, v = gather_dense(p, b, dev, cdt)  # [S, Hkv, Tk, D|Dv]
    out = torch.zeros(q.shape[0], Hq, Dv, dtype=torch.float32, device=dev)
    lse = torch.zeros(q.shape[0], Hq, dtype=torch.float32, device=dev)
    for seq in pa.sequences(p, b):
        L, ctx, r = seq.q_len, seq.ctx, seq.rows
        if L == 0:
            continue
        if seq.empty:
            out[r], lse[r] = empty_rows(p, b, L, dev)
            continue
        qs = q[r].permute(1, 0, 2)[None]  # [1, Hq, L, D]
        ks, vs = k[seq.s:seq.s + 1, :, :ctx], v[seq.s:seq.s + 1, :, :ctx]
        if p["has_sinks"]:  # a zero key (logit 0 + bias = the sink) and a zero value row
            ks = torch.cat([ks, torch.zeros(1, Hkv, 1, ks.shape[-1], dtype=cdt, device=dev)], 2)
            vs = torch.cat([vs, torch.zeros(1, Hkv, 1, Dv, dtype=cdt, device=dev)], 2)
        # Query head h reads KV head h / G: repeat_interleave, not repeat (which would be h % Hkv).
        ks, vs = ks.repeat_interleave(G, dim=1), vs.repeat_interleave(G, dim=1)
        mask = bias(p, b, seq, dev)
        with sdpa_kernel(sdpa_backends()):
            o = F.scaled_dot_product_attention(qs, ks, vs, attn_mask=mask.to(cdt), scale=scale)
        out[r] = o[0].permute(1, 0, 2).float()
        if b.lse is not None:
            x = torch.matmul(qs.float(), ks.float().transpose(-1, -2)) * scale + mask
            lse[r] = torch.logsumexp(x, dim=-1)[0].permute(1, 0)
    pa.store_codes(b.rows("out"), out, p["q_dtype"])
    if b.lse is not None:
        pa.store_float32(b.rows("lse"), lse)
    if dev.startswith("cuda"):
        torch.cuda.synchronize()
