"""Device buffers shared by pacheck with the worker (docs/worker-protocol.md, "Device buffers").

For a kernel declared MEMORY = "device", a pacheck with a GPU keeps the launch's buffers in its
own guarded device memory and sends their IPC handles instead of shared-memory offsets. Here they
are opened (once per allocation: pacheck's device pool hands the same blocks out again, so the
mappings are cached) and given to the adapter as torch tensors of the same shapes and element
types as the host views -- uint16 codes as int16, as pacheck_adapter.to_torch expects. Guards,
poison and the copy back stay with pacheck; the adapter only reads the inputs and writes out, lse
and workspace, and synchronises before run() returns.
"""
import collections
import ctypes
import ctypes.util

import numpy as np

_IPC_LAZY_ENABLE_PEER_ACCESS = 1  # cudaIpcMemLazyEnablePeerAccess / hipIpcMemLazyEnablePeerAccess


class _IpcHandle(ctypes.Structure):
    _fields_ = [("reserved", ctypes.c_char * 64)]  # cudaIpcMemHandle_t and hipIpcMemHandle_t


class _Cai(object):
    """A flat byte range of device memory, as torch.as_tensor reads it."""

    def __init__(self, ptr, nbytes):
        self.__cuda_array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (ptr, False),
                                         "version": 3, "strides": None}


def _runtime(torch):
    """(library, prefix) of the GPU runtime torch runs on: the copy torch loaded when there is one
    (found in /proc/self/maps), else the usual names."""
    prefix = "hip" if getattr(torch.version, "hip", None) else "cuda"
    stem = "libamdhip64.so" if prefix == "hip" else "libcudart.so"
    names = []
    try:
        with open("/proc/self/maps") as f:
            names += sorted({line.split()[-1] for line in f if stem in line})
    except OSError:
        pass
    names += [stem + ".13", stem + ".12", stem + ".6", stem, ctypes.util.find_library(prefix + "rt") or ""]
    tried = []
    for n in names:
        if not n:
            continue
        try:
            lib = ctypes.CDLL(n)
            op = getattr(lib, prefix + "IpcOpenMemHandle")
            op.argtypes, op.restype = [ctypes.POINTER(ctypes.c_void_p), _IpcHandle, ctypes.c_uint], ctypes.c_int
            close = getattr(lib, prefix + "IpcCloseMemHandle")
            close.argtypes, close.restype = [ctypes.c_void_p], ctypes.c_int
            err = getattr(lib, prefix + "GetErrorString")
            err.argtypes, err.restype = [ctypes.c_int], ctypes.c_char_p
            return lib, prefix
        except (OSError, AttributeError) as e:
            tried.append("%s (%s)" % (n, e))
    raise RuntimeError("no GPU runtime with IPC found: tried " + ", ".join(tried))


def available():
    """(True, "") when device buffers can be opened here, else (False, why)."""
    try:
        import torch
    except ImportError:
        return False, "torch is not installed"
    try:
        if not torch.cuda.is_available():
            return False, "torch sees no GPU"
        torch.cuda.init()
        _runtime(torch)
    except Exception as e:  # a broken install is a reason to use host buffers, not to die
        return False, "%s: %s" % (type(e).__name__, e)
    return True, ""


_TORCH_OF = {np.dtype(np.uint16): "int16", np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8",
             np.dtype(np.float32): "float32", np.dtype(np.int32): "int32"}


class DeviceMemory(object):
    """Opens pacheck's device buffers by handle; keeps up to `keep` allocations mapped."""

    def __init__(self, keep=64):
        import torch
        self.torch = torch
        self.lib, self.prefix = _runtime(torch)
        self.keep = keep
        self.opened = collections.OrderedDict()  # handle (hex) -> base address
        self.bytes_of = {}  # handle -> uint8 tensor over the allocation (see allocation())

    def _call(self, what, rc):
        if rc != 0:
            msg = getattr(self.lib, self.prefix + "GetErrorString")(rc)
            raise RuntimeError("%s%s failed: %s (%d)" % (self.prefix, what, (msg or b"?").decode(), rc))

    def base(self, handle):
        """The address of the allocation `handle` in this process (opened on first use)."""
        if handle in self.opened:
            self.opened.move_to_end(handle)
            return self.opened[handle]
        try:
            raw = bytes.fromhex(handle)
        except (TypeError, ValueError):
            raise ValueError("not a hex IPC handle: %r" % (handle,))
        if len(raw) != 64:
            raise ValueError("an IPC handle is 64 bytes, got %d" % len(raw))
        h = _IpcHandle()
        ctypes.memmove(ctypes.byref(h), raw, 64)
        ptr = ctypes.c_void_p()
        self._call("IpcOpenMemHandle", getattr(self.lib, self.prefix + "IpcOpenMemHandle")(
            ctypes.byref(ptr), h, _IPC_LAZY_ENABLE_PEER_ACCESS))
        self.opened[handle] = ptr.value
        while len(self.opened) > self.keep:  # a block pacheck's pool let go long ago
            old, addr = self.opened.popitem(last=False)
            self.bytes_of.pop(old, None)
            getattr(self.lib, self.prefix + "IpcCloseMemHandle")(ctypes.c_void_p(addr))
        return ptr.value

    def allocation(self, handle, nbytes):
        """A uint8 tensor over the first `nbytes` of the allocation: made once per allocation
        (again only when a later buffer reaches further), so a buffer is a slice, not a new
        tensor from an address."""
        base = self.base(handle)
        t = self.bytes_of.get(handle)
        if t is None or t.numel() < nbytes:
            t = self.torch.as_tensor(_Cai(base, nbytes), device="cuda")
            self.bytes_of[handle] = t
        return t

    def tensor(self, spec, name, dtype, shape=None):
        """The buffer [handle, offset, bytes, allocation bytes] as a torch tensor of numpy
        `dtype`'s storage type, flat or of `shape`; None when not given (an empty handle)."""
        if spec is None:
            return None
        try:
            handle, off, nbytes = str(spec[0]), int(spec[1]), int(spec[2])
            alloc = int(spec[3]) if len(spec) > 3 else off + nbytes
        except (TypeError, ValueError, IndexError):
            raise ValueError("device buffer %s: expected [handle, offset, bytes, allocation], got %r"
                             % (name, spec))
        if not handle or nbytes == 0:
            return None
        item = np.dtype(dtype).itemsize
        if off < 0 or nbytes < 0 or (off % item) or off + nbytes > alloc:
            raise ValueError("device buffer %s: offset %d, %d bytes in an allocation of %d"
                             % (name, off, nbytes, alloc))
        need = nbytes // item if shape is None else int(np.prod(shape, dtype=np.int64))
        if need * item > nbytes:
            raise ValueError("device buffer %s: %d bytes, shape %s needs %d" % (name, nbytes, list(shape),
                                                                              need * item))
        raw = self.allocation(handle, alloc)[off:off + need * item]
        t = raw.view(getattr(self.torch, _TORCH_OF[np.dtype(dtype)]))
        return t if shape is None else t.reshape(shape)
