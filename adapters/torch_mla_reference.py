"""torch_mla_reference: an MLA (multi-head latent attention) decode reference in torch, fp32, over
the latent cache of the MLA layouts (mla_joint, mla_split) -- what a DeepSeek / Kimi decode kernel
computes after weight absorption:

    K = the whole latent + rope row (D = 576), V = its first Dv (512) elements,
    O = softmax(scale * Q K^T) V  over one latent KV head shared by every query head.

The pages are gathered on the adapter's device (pacheck_adapter.gather_torch: the pool copied
once, one indexed read per cache through the layout formula -- for mla_split the latent part from
the V cache (ckv) and the rope part from the K cache (kpe)). Only K is gathered: V is K's first
Dv columns (the same stored codes; the K and V scales of an MLA case are one per-tensor scale, and
a case whose two differ is refused). cuda when torch sees one, else cpu; PACHECK_ADAPTER_DEVICE
overrides.

Per sequence: logits = Q K^T in fp32 (one matmul for every query head and query token), the
causal mask among the q_len new tokens (token i at position ctx - q_len + i), softmax, P V, the
LSE by logsumexp (natural base). A sequence of context 0 is written directly (O = 0, LSE = -inf).
Only the output is rounded (to the q dtype). No window, soft-cap, ALiBi or sinks: MLA decode has
none of them, and none is declared.

Only the MLA layouts are declared; without torch the hello still works and supports() refuses.
"""

import pacheck_adapter as pa

NAME = "torch_mla_reference"
VERSION = "1"
MEMORY = "device"  # pacheck's device buffers when it has a GPU (else host views, copied here)
CAPABILITY = pa.mla_capability()
# fp32 throughout; only the output is rounded (to the q dtype).
NUMERICS = pa.numerics("fp32", "fp32", "fp32")

try:
    import torch
    PROVENANCE = ("pacheck adapters/torch_mla_reference.py (torch %s, fp32 matmul)"
                  % torch.__version__)
except ImportError:  # the hello still works; supports() then refuses
    torch = None
    PROVENANCE = "pacheck adapters/torch_mla_reference.py (torch not installed)"


def why_not(p):
    """The reason this reference does not take p, or None."""
    if torch is None:
        return "torch is not installed"
    if not p.mla:
        return "kv_layout %s: this reference reads the MLA layouts only" % p["kv_layout"]
    if p["num_kv_heads"] != 1:
        return "an MLA cache holds one latent KV head, not %d" % p["num_kv_heads"]
    if p.head_size_v > p["head_size"]:
        return "V (Dv %d) is part of the K row (D %d)" % (p.head_size_v, p["head_size"])
    return None


def supports(p):
    why = why_not(p)
    return (why is None, why or "")


def one_scale(p, b):
    """The per-tensor scale K and V share (1 for scale mode none); NotSupported if they differ."""
    if p["scale_mode"] == "none":
        return 1.0
    k, v = (float(pa.host(s.reshape(-1)[:1])[0]) for s in (b.k_scales, b.v_scales))
    if k != v:
        raise pa.NotSupported("MLA reads V from the K row with one scale: k_scale %r != v_scale %r"
                              % (k, v))
    return k


def run(p, b):
    why = why_not(p)
    if why:
        raise pa.NotSupported(why)
    one_scale(p, b)
    dev = pa.default_device()
    Hq, Dv = p["num_q_heads"], p.head_size_v
    scale = pa.softmax_scale(p)
    q = pa.to_torch(b.rows("q"), dev, p["q_dtype"]).float()  # [T, Hq, D]
    k, _ = pa.gather_torch(p, b, "k", dev)  # fp32 [S, Tk, 1, D], dequantized, on dev
    k = k[:, :, 0]  # [S, Tk, D]: the one latent head
    out = torch.zeros(q.shape[0], Hq, Dv, dtype=torch.float32, device=dev)
    lse = torch.full((q.shape[0], Hq), float("-inf"), dtype=torch.float32, device=dev)
    for seq in pa.sequences(p, b):
        L, ctx, r = seq.q_len, seq.ctx, seq.rows
        if L == 0 or seq.empty:  # no key: O = 0, LSE = -inf (as initialised)
            continue
        ks = k[seq.s, :ctx]  # [ctx, D]
        vs = ks[:, :Dv]  # V is the K row's latent part
        x = torch.matmul(q[r], ks.t()) * scale  # [L, Hq, ctx]
        pos = torch.from_numpy(seq.positions()).to(dev)
        t = torch.arange(ctx, device=dev)
        x = x.masked_fill((t[None, :] > pos[:, None])[:, None, :], float("-inf"))
        lse[r] = torch.logsumexp(x, dim=-1)
        out[r] = torch.matmul(torch.softmax(x, dim=-1), vs)
    pa.store_codes(b.rows("out"), out, p["q_dtype"])
    if b.lse is not None:
        pa.store_float32(b.rows("lse"), lse)
    if str(dev).startswith("cuda"):
        torch.cuda.synchronize()
