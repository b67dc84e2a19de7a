"""The device and torch half of pacheck_adapter (which re-exports every name here): torch dtypes,
host arrays or shared device buffers as torch tensors, the pages gathered on a device, and the
outputs written back into a numpy view or a device buffer in place. torch is imported only inside
the functions, so an adapter without torch still loads. Import pacheck_adapter, not this module."""
import os

import numpy as np

from pacheck_adapter import DTYPE_BYTES, decode_table, host, is_torch, kv_buffers, kv_offsets, \
    kv_segments, scale_index, token_slots


def native_fp8():
    """The fp8 flavour the GPU reads natively: PACHECK_NATIVE_FP8 when set, else gfx94x (MI300)
    -> "fp8_e4m3fnuz", other GPUs -> "fp8_e4m3fn", None without a GPU."""
    env = os.environ.get("PACHECK_NATIVE_FP8")
    if env:
        return env
    try:
        import torch
        if not torch.cuda.is_available():
            return None
        arch = getattr(torch.cuda.get_device_properties(0), "gcnArchName", "") or ""
        return "fp8_e4m3fnuz" if arch.startswith("gfx94") else "fp8_e4m3fn"
    except ImportError:
        return None


def default_device():
    """PACHECK_ADAPTER_DEVICE when set, else "cuda" when torch sees a GPU, else "cpu"."""
    env = os.environ.get("PACHECK_ADAPTER_DEVICE")
    if env:
        return env
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


_TORCH_NAMES = {"bf16": "bfloat16", "fp16": "float16", "fp8_e4m3fn": "float8_e4m3fn",
                "fp8_e4m3fnuz": "float8_e4m3fnuz", "fp8_e5m2": "float8_e5m2", "int8": "int8",
                "fp32": "float32"}
# numpy storage that torch.from_numpy accepts for each torch dtype (then .view() reinterprets).
_STORAGE = {"bfloat16": np.int16, "float16": np.float16, "float8_e4m3fn": np.uint8,
            "float8_e4m3fnuz": np.uint8, "float8_e5m2": np.uint8, "int8": np.int8,
            "uint8": np.uint8, "int16": np.int16, "float32": np.float32, "int32": np.int32,
            "int64": np.int64, "float64": np.float64}


def torch_dtype(name):
    """torch dtype of a pacheck dtype name ("bf16") or of a torch name ("bfloat16")."""
    import torch
    return getattr(torch, _TORCH_NAMES.get(name, name))


def to_torch(array, device, dtype=None):
    """A numpy array (codes or plain values) -> torch tensor on `device`, same shape.
    dtype reinterprets the bits: to_torch(q_codes, dev, "bf16") gives a torch.bfloat16 tensor
    (uint16 codes are viewed as int16, which torch.from_numpy takes, then .view(bfloat16)).
    A torch tensor (a shared device buffer, 16-bit codes as int16) is reinterpreted the same way
    and moved only if it lives elsewhere."""
    import torch
    if is_torch(array):
        t = array
        if dtype is not None and t.dtype != torch_dtype(_TORCH_NAMES.get(dtype, dtype)):
            t = t.view(torch_dtype(_TORCH_NAMES.get(dtype, dtype)))
        return t.to(device)
    a = np.ascontiguousarray(array)
    tname = _TORCH_NAMES.get(dtype, dtype) if dtype else None
    if tname is None:
        # torch's uint16 is a storage type only (no indexing on cuda): hand codes over as int16.
        t = torch.from_numpy(a.view(np.int16) if a.dtype == np.uint16 else a)
    else:
        t = torch.from_numpy(a.view(_STORAGE[tname]))
        if t.dtype != torch_dtype(tname):
            t = t.view(torch_dtype(tname))
    return t.to(device)


class TensorSpec(object):
    """A tensor an engine call takes, described in numpy so that the call can be planned (and
    tested) without torch: `data` is a flat numpy array (or None: allocate), viewed as `shape`
    with `strides` in elements (None: contiguous) and `dtype` a torch dtype name. A strided view
    of a flat cache (page_stride > dense page) stays strided on the device."""

    def __init__(self, shape, dtype, data=None, strides=None, fill=None):
        self.shape, self.dtype, self.data = tuple(int(s) for s in shape), dtype, data
        self.strides = tuple(int(s) for s in strides) if strides is not None else _contig(shape)
        self.fill = fill

    def numpy(self):
        """The numpy view this spec describes (zero-copy; a copy for device data), or None for
        an allocation."""
        if self.data is None:
            return None
        flat = np.ascontiguousarray(host(self.data)).reshape(-1)
        item = flat.dtype.itemsize
        return np.lib.stride_tricks.as_strided(flat, self.shape, [s * item for s in self.strides])

    def to_torch(self, device):
        import torch
        dt = torch_dtype(self.dtype)
        if self.data is None:
            t = torch.empty(self.shape, dtype=dt, device=device)
            if self.fill is not None:
                t.fill_(self.fill)
            return t
        data = self.data if is_torch(self.data) else np.ascontiguousarray(self.data)
        flat = to_torch(data.reshape(-1), device, self.dtype)
        return flat.as_strided(self.shape, self.strides)


class DType(object):
    """A torch dtype named in a planned engine call (materialise() resolves it)."""

    def __init__(self, name):
        self.name = _TORCH_NAMES.get(name, name)

    def __eq__(self, other):
        return isinstance(other, DType) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __repr__(self):
        return "DType(%s)" % self.name


def host_tensor(spec):
    """A TensorSpec in numpy, without torch: its zero-copy view, or for an allocation zeros of
    its storage dtype (spec.fill when given) -- what a stub engine gets in tests without torch."""
    a = spec.numpy()
    if a is None:
        a = np.zeros(spec.shape, dtype=_STORAGE[spec.dtype])
        if spec.fill is not None:
            a[...] = spec.fill
    return a


def materialise(value, device=None):
    """A planned engine call's value made real: TensorSpec -> a torch tensor on `device` (one
    per distinct spec within one call of this function) and DType -> the torch dtype; lists,
    tuples and dicts element by element; anything else as it is. device=None: numpy instead
    (host_tensor(); a DType becomes its name), for stub engines in tests without torch."""
    made = {}

    def one(v):
        if isinstance(v, TensorSpec):
            if id(v) not in made:
                made[id(v)] = v.to_torch(device) if device is not None else host_tensor(v)
            return made[id(v)]
        if isinstance(v, DType):
            return torch_dtype(v.name) if device is not None else v.name
        if isinstance(v, dict):
            return {k: one(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return type(v)(one(x) for x in v)
        return v
    return one(value)


def _contig(shape):
    st, acc = [], 1
    for s in reversed(shape):
        st.append(acc)
        acc *= int(s)
    return tuple(reversed(st))


def dequantize_torch(p, codes, scales, device):
    """dequantize() in fp32 on a torch device: the numpy codes and scales of gather_codes() are
    copied to `device` and decoded and scaled there (the same bits as dequantize())."""
    name = p["kv_dtype"]
    if DTYPE_BYTES[name] == 1:
        vals = to_torch(decode_table(name).copy(), device)[to_torch(codes, device).long()]
    else:
        vals = to_torch(codes, device, name).float()
    return vals * to_torch(scales, device)[..., None]


def gather_kv_torch(p, buffers, device, seqs=None, pad_to=None):
    """Dequantized logical K and V on a torch device, in fp32: (k [n, T, Hkv, D], v [n, T, Hkv,
    Dv], valid [n, T]), the same values as gather_kv() (pads as token_slots does; either page
    table; every layout, the MLA ones included).

    The whole pool is copied to `device` once (one contiguous copy per buffer), and the pages
    are gathered there with one indexed read through kv_offsets() -- no gather on the host, no
    Python loop over sequences or pages, so a long context costs a device gather, not a host
    one."""
    k, v, valid = _gather(p, buffers, device, "kv", seqs, pad_to)
    return k, v, valid


def gather_torch(p, buffers, which, device, seqs=None, pad_to=None):
    """One side of gather_kv_torch(): (vals fp32 [n, T, Hkv, D (V: Dv)], valid [n, T]) of K
    (which="k") or V ("v"), gathered on `device`. An MLA reference gathers K alone: its first
    Dv elements are V's codes (mla_split's K reads them from the V cache, see kv_segments())."""
    vals, valid = _gather(p, buffers, device, which, seqs, pad_to)
    return vals, valid


def _gather(p, buffers, device, sides, seqs, pad_to):
    """[vals of each side in `sides` ("k", "v" or "kv")..., valid]; each cache is copied to the
    device at most once, and each side is one indexed read per cache segment holding it."""
    import torch
    blk, tok, valid = token_slots(p, buffers, None, seqs, pad_to)  # either page table
    blk_t, tok_t = to_torch(blk, device)[:, :, None], to_torch(tok, device)[:, :, None]
    H = p["num_kv_heads"]
    h = torch.arange(H, device=device)[None, None, :]
    name = p["kv_dtype"]
    table = to_torch(decode_table(name).copy(), device) if DTYPE_BYTES[name] == 1 else None
    flats = {}

    def flat(c):  # the pool of cache c on the device: one copy, shared by the sides reading it
        if c not in flats:
            cache, _ = kv_buffers(buffers, c)
            flats[c] = to_torch(cache, device, None if table is not None else name)
        return flats[c]

    out = []
    for which in sides:
        D = p["head_size"] if which == "k" else int(p.get("head_size_v") or p["head_size"])
        d = torch.arange(D, device=device)[None, None, None, :]
        _, scales = kv_buffers(buffers, which)
        off = kv_offsets(p, which, blk_t[..., None], h[..., None], tok_t[..., None], d)
        parts = [flat(c)[off[..., d0:d1]] for c, d0, d1 in kv_segments(p, which)]
        codes = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        vals = table[codes.long() & 0xFF] if table is not None else codes.float()
        if p["scale_mode"] != "none":
            sc = to_torch(scales, device)
            vals = vals * sc[scale_index(p, blk_t, h, tok_t)][..., None]
        out.append(vals)
    return out + [valid]


def store_codes(out_view, tensor, dtype_name):
    """Writes a torch tensor into the output codes (rounded to dtype_name first): a numpy view,
    or a shared device buffer, written in place on its device. A numpy `tensor` holds codes
    already (the storage of dtype_name, as host_tensor() allocates them): its bits are copied."""
    if not is_torch(tensor) and not is_torch(out_view):
        a = np.ascontiguousarray(tensor)
        np.copyto(out_view, a.view(out_view.dtype).reshape(out_view.shape))
        return
    import torch
    if is_torch(out_view):
        t = tensor.detach().to(torch_dtype(dtype_name)).contiguous()
        out_view.copy_(t.view(out_view.dtype).reshape(out_view.shape))
        return
    t = tensor.detach().to(torch_dtype(dtype_name)).contiguous().cpu()
    if DTYPE_BYTES[dtype_name] == 2:
        codes = t.view(torch.int16).numpy().view(np.uint16)
    elif dtype_name == "fp32":
        codes = t.numpy()
    else:
        codes = t.view(torch.uint8).numpy()
    np.copyto(out_view, codes.reshape(out_view.shape))


def store_float32(view, tensor):
    """Writes a torch tensor (or a numpy array) into a float32 numpy view (e.g. the LSE) or
    device buffer."""
    if not is_torch(tensor) and not is_torch(view):
        np.copyto(view, np.asarray(tensor, dtype=np.float32).reshape(view.shape))
        return
    import torch
    if is_torch(view):
        view.copy_(tensor.detach().to(torch.float32).reshape(view.shape))
        return
    t = tensor.detach().to(torch.float32).contiguous().cpu()
    np.copyto(view, t.numpy().reshape(view.shape))
