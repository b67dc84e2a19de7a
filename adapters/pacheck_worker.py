"""pacheck's Python worker: serves one adapter module over the worker protocol.

    python3 adapters/pacheck_worker.py --adapter PATH/adapter.py

Channels (docs/worker-protocol.md), inherited from the parent:
    fd 3  the memory file (memfd) holding every buffer of a launch (size = the request's capacity)
    fd 4  requests, one JSON object per line (EOF: exit 0)
    fd 5  responses, one JSON object per line

The first line on fd 5 is the hello, sent unasked. Then every request gets exactly one response.
An adapter's failure (any exception from its run) is a *status* of the run ("error", with the
exception's text), never the end of the worker; a malformed request gets "ok": false.
"""
import argparse
import importlib.util
import io
import json
import mmap
import os
import sys
import time
import traceback

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

import numpy as np  # noqa: E402

import pacheck_adapter as pa  # noqa: E402

PROTOCOL = 1
MEM_FD, REQ_FD, RESP_FD = 3, 4, 5


class BadRequest(Exception):
    """A request the worker cannot serve: answered with "ok": false."""


def _error_text(e):
    return type(e).__name__ + ": " + str(e)


# ---- the adapter's kernels -------------------------------------------------------------------
def load_adapter(path):
    """Imports the adapter from its file. Its folder joins sys.path so it can import siblings."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(1, folder)
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot import %s" % path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def kernels_of(mod):
    """{name: entry}; an entry holds the descriptor fields and the callables.

    A module serves one kernel through module-level NAME, VERSION, PROVENANCE, MEMORY,
    CAPABILITY, NUMERICS, run and optionally supports / workspace_bytes; or a family through
    KERNELS = [dict(name=..., version=..., ..., run=fn, supports=fn, workspace_bytes=fn), ...],
    where a missing key falls back to the module-level one."""
    entries = getattr(mod, "KERNELS", None)
    if entries is None:
        entries = [{}]
    out = {}
    for e in entries:
        def get(key, attr, default=None, e=e):
            return e[key] if key in e else getattr(mod, attr, default)
        k = {
            "name": get("name", "NAME"),
            "version": str(get("version", "VERSION", "0")),
            "provenance": str(get("provenance", "PROVENANCE", "")),
            "memory": get("memory", "MEMORY", "host"),
            "capability": pa.capability(**get("capability", "CAPABILITY", {})),
            "numerics": pa.numerics(**get("numerics", "NUMERICS", {})),
            "run": get("run", "run"),
            "supports": get("supports", "supports"),
            "workspace_bytes": get("workspace_bytes", "workspace_bytes"),
        }
        if not k["name"] or not isinstance(k["name"], str):
            raise ValueError("an adapter kernel needs a NAME (string)")
        if k["memory"] not in ("host", "device"):
            raise ValueError("%s: MEMORY must be \"host\" or \"device\", not %r"
                             % (k["name"], k["memory"]))
        if not callable(k["run"]):
            raise ValueError("%s: the adapter defines no run(problem, buffers)" % k["name"])
        if k["name"] in out:
            raise ValueError("two kernels named %r" % k["name"])
        out[k["name"]] = k
    return out


def device_buffers_available(kernels):
    """Whether this worker opens pacheck's device buffers (only asked where a kernel declares
    device memory; PACHECK_HOST_BUFFERS=1 keeps host buffers, the fallback, for comparison)."""
    if os.environ.get("PACHECK_HOST_BUFFERS") == "1":
        return False
    if not any(k["memory"] == "device" for k in kernels.values()):
        return False
    import pacheck_device
    ok, why = pacheck_device.available()
    if not ok:
        sys.stderr.write("pacheck_worker: device kernels get host buffers: %s\n" % why)
    return ok


def hello_of(kernels):
    return {"type": "hello", "protocol": PROTOCOL, "ok": True,
            "device_buffers": device_buffers_available(kernels), "kernels": [
                {"name": k["name"], "version": k["version"], "provenance": k["provenance"],
                 "memory": k["memory"], "has_supports": callable(k["supports"]),
                 "capability": k["capability"], "numerics": k["numerics"]} for k in kernels.values()]}


# ---- the shared memory file ------------------------------------------------------------------
class SharedMemory(object):
    """fd 3 mapped read-write, remapped when a request's capacity differs from the mapping."""

    def __init__(self, fd):
        self.fd, self.map, self.size = fd, None, 0

    def ensure(self, capacity):
        if capacity <= 0:
            raise BadRequest("capacity must be > 0")
        if self.map is not None and capacity == self.size:
            return self.map
        file_size = os.fstat(self.fd).st_size
        if file_size < capacity:  # touching pages past the end would be SIGBUS
            raise BadRequest("memory file holds %d bytes, capacity says %d" % (file_size, capacity))
        if self.map is not None:
            try:
                self.map.close()
            except BufferError:
                pass  # an adapter kept a view: the old mapping lives until that view dies
        self.map = mmap.mmap(self.fd, capacity, flags=mmap.MAP_SHARED,
                             prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self.size = capacity
        return self.map


def _view(mem, capacity, spec, name, dtype, shape=None):
    """Zero-copy numpy view of buffer `name` ([offset, bytes]); None when not given."""
    if spec is None:
        return None
    try:
        off, nbytes = int(spec[0]), int(spec[1])
    except (TypeError, ValueError, IndexError):
        raise BadRequest("buffer %s: expected [offset, bytes], got %r" % (name, spec))
    if off == 0 and nbytes == 0:
        return None
    if off < 0 or nbytes < 0 or off + nbytes > capacity:
        raise BadRequest("buffer %s: [%d, %d] lies outside capacity %d" % (name, off, nbytes,
                                                                          capacity))
    item = np.dtype(dtype).itemsize
    if off % item:
        raise BadRequest("buffer %s: offset %d is not aligned to %d" % (name, off, item))
    if shape is None:
        if nbytes % item:
            raise BadRequest("buffer %s: %d bytes is not a whole number of %d-byte elements"
                             % (name, nbytes, item))
        return np.frombuffer(mem, dtype=dtype, count=nbytes // item, offset=off)
    need = int(np.prod(shape, dtype=np.int64))
    if nbytes < need * item:
        raise BadRequest("buffer %s: %d bytes, shape %s needs %d" % (name, nbytes, list(shape),
                                                                    need * item))
    return np.frombuffer(mem, dtype=dtype, count=need, offset=off).reshape(shape)


_PROBLEM_INTS = ("num_seqs", "num_q_heads", "num_kv_heads", "head_size", "block_size")
# 0 allowed: q_len (a ragged batch), max_blocks_per_seq (the CSR table), the ABI 1.2 fields
# (absent or 0 from an earlier pacheck: Dv = D, T = S * q_len).
_PROBLEM_COUNTS = ("q_len", "max_blocks_per_seq", "head_size_v", "total_q", "max_q_len",
                   "num_kv_indices")


def _count(p, f, default=0):
    v = p.get(f, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise BadRequest("problem %s: expected a non-negative integer, got %r" % (f, v))
    return v


def build_buffers(p, view):
    """The launch's Buffers, each made by view(name, numpy dtype, shape or None): a host view of
    the memory file, or a torch tensor over a shared device buffer.

    q, out and lse keep their uniform shapes [S, q_len, Hq, D|Dv] and [S, q_len, Hq] when q_len
    > 0 (the same bytes as the packed [T, Hq, ...]); a ragged batch (q_len 0) gets the packed
    [T, Hq, D], [T, Hq, Dv] and [T, Hq]. Buffers an earlier pacheck does not send are None."""
    if not isinstance(p, pa.Problem):
        p = pa.Problem(p)
    for f in _PROBLEM_INTS:
        if not isinstance(p.get(f), int) or p[f] < 1:
            raise BadRequest("problem %s: expected a positive integer, got %r" % (f, p.get(f)))
    for f in _PROBLEM_COUNTS:
        _count(p, f)
    S, L, Hq, D = p["num_seqs"], p["q_len"], p["num_q_heads"], p["head_size"]
    Dv = p.head_size_v
    T = p.total_q
    if L > 0 and T != S * L:
        raise BadRequest("problem total_q=%d, but num_seqs * q_len = %d" % (T, S * L))
    if T < 1:
        raise BadRequest("problem: a ragged batch (q_len 0) needs total_q > 0")
    csr = p.get("page_table", "padded") == "csr"
    if not csr and p["max_blocks_per_seq"] < 1:
        raise BadRequest("problem max_blocks_per_seq: expected a positive integer with the padded "
                         "page table, got %r" % p["max_blocks_per_seq"])
    rows = (S, L) if L > 0 else (T,)
    qdt, kvdt = pa.code_dtype(p["q_dtype"]), pa.code_dtype(p["kv_dtype"])
    b = pa.Buffers(
        q=view("q", qdt, rows + (Hq, D)),
        out=view("out", qdt, rows + (Hq, Dv)),
        lse=view("lse", np.float32, rows + (Hq,)),
        k_cache=view("k_cache", kvdt, None),
        v_cache=view("v_cache", kvdt, None),
        k_scales=view("k_scales", np.float32, None),
        v_scales=view("v_scales", np.float32, None),
        block_tables=None if csr else view("block_tables", np.int32,
                                           (S, p["max_blocks_per_seq"])),
        context_lens=view("context_lens", np.int32, (S,)),
        alibi_slopes=view("alibi_slopes", np.float32, (Hq,)),
        sinks=view("sinks", np.float32, (Hq,)),
        cu_seqlens_q=view("cu_seqlens_q", np.int32, (S + 1,)),
        kv_indptr=view("kv_indptr", np.int32, (S + 1,)) if csr else None,
        kv_indices=view("kv_indices", np.int32, None) if csr else None,
        kv_last_page_len=view("kv_last_page_len", np.int32, (S,)) if csr else None,
        workspace=view("workspace", np.uint8, None),
    )
    need = ["q", "out", "k_cache", "v_cache", "context_lens"]
    need += ["kv_indptr", "kv_last_page_len"] if csr else ["block_tables"]
    if csr and p.get("num_kv_indices", 0) > 0:
        need.append("kv_indices")
    if L == 0:
        need.append("cu_seqlens_q")  # a ragged batch's rows are only known from it
    for n in need:
        if getattr(b, n) is None:
            raise BadRequest("buffer %s not given" % n)
    return b


# ---- requests --------------------------------------------------------------------------------
class Worker(object):
    def __init__(self, kernels, mem_fd):
        self.kernels = kernels
        self.mem = SharedMemory(mem_fd)
        self.device = None  # pacheck_device.DeviceMemory, opened at the first device launch

    def kernel(self, req):
        name = req.get("kernel")
        if name is None and len(self.kernels) == 1:
            name = next(iter(self.kernels))
        if name not in self.kernels:
            raise BadRequest("unknown kernel %r (this worker serves %s)"
                             % (name, ", ".join(sorted(self.kernels))))
        return self.kernels[name]

    def problem(self, req):
        if not isinstance(req.get("problem"), dict):
            raise BadRequest("request has no problem object")
        try:
            return pa.make_problem(req["problem"])
        except ValueError as e:
            raise BadRequest(str(e))

    def handle(self, req):
        t = req.get("type")
        if t == "supports":
            return self.supports(req)
        if t == "workspace":
            return self.workspace(req)
        if t == "run":
            return self.run(req)
        raise BadRequest("unknown request type %r" % (t,))

    def supports(self, req):
        k, p = self.kernel(req), self.problem(req)
        if not callable(k["supports"]):
            return {"ok": True, "supports": True}
        try:
            r = k["supports"](p)
        except pa.NotSupported as e:
            return {"ok": True, "supports": False, "why": str(e)}
        except Exception as e:
            # A supports() that raises is a bug in the adapter, not a clean refusal: it must not
            # quietly turn into "not supported" (which would hide every case behind it).
            traceback.print_exc()
            raise BadRequest("supports() raised " + _error_text(e))
        ok, why = (r if isinstance(r, tuple) else (r, ""))
        out = {"ok": True, "supports": bool(ok)}
        if not ok:
            out["why"] = str(why or "refused by supports()")
        return out

    def workspace(self, req):
        k, p = self.kernel(req), self.problem(req)
        n = 0
        if callable(k["workspace_bytes"]):
            try:
                n = int(k["workspace_bytes"](p) or 0)
            except Exception as e:
                traceback.print_exc()
                raise BadRequest("workspace_bytes() raised " + _error_text(e))
        return {"ok": True, "bytes": n}

    def device_memory(self):
        if self.device is None:
            import pacheck_device
            self.device = pacheck_device.DeviceMemory()
        return self.device

    def buffers(self, req, p):
        """Host views of the memory file, or (memory "device") tensors over pacheck's device
        buffers, opened by their IPC handles."""
        if req.get("memory") == "device":
            specs = req.get("device_buffers")
            if not isinstance(specs, dict):
                raise BadRequest("device_buffers must be an object")
            dev = self.device_memory()

            def view(name, dtype, shape):
                try:
                    return dev.tensor(specs.get(name), name, dtype, shape)
                except ValueError as e:
                    raise BadRequest(str(e))
            return build_buffers(p, view)
        capacity = req.get("capacity")
        if not isinstance(capacity, int):
            raise BadRequest("run request has no integer capacity")
        specs = req.get("buffers") or {}
        if not isinstance(specs, dict):
            raise BadRequest("buffers must be an object")
        mem = self.mem.ensure(capacity)
        return build_buffers(p, lambda name, dtype, shape: _view(mem, capacity, specs.get(name), name, dtype,
                                                                 shape))

    def run(self, req):
        k, p = self.kernel(req), self.problem(req)
        b = self.buffers(req, p)
        if b.workspace is None and callable(k["workspace_bytes"]):
            # A parent that does not place the workspace in shared memory: give a private one.
            n = self.workspace(req)["bytes"]
            if n > 0:
                b.workspace = np.zeros(n, dtype=np.uint8)
        status, error, ret = "ok", "", None
        t0 = time.perf_counter()
        try:
            ret = k["run"](p, b)
        except pa.NotSupported as e:
            status, error = "not_supported", str(e) or "not supported"
        except (Exception, SystemExit) as e:  # a kernel's failure is a status, never our exit
            status, error = "error", _error_text(e)
            traceback.print_exc()
        elapsed = (time.perf_counter() - t0) * 1e3
        wrote_lse = status == "ok" and b.lse is not None
        if isinstance(ret, dict) and "wrote_lse" in ret:
            wrote_lse = wrote_lse and bool(ret["wrote_lse"])
        del b  # drop the views so a later remap can close the mapping
        out = {"ok": True, "status": status, "elapsed_ms": round(elapsed, 4),
               "wrote_lse": wrote_lse}
        if status != "ok":
            out["error"] = error
        return out


def _send(out, msg):
    out.write((json.dumps(msg, allow_nan=False) + "\n").encode("utf-8"))
    out.flush()


def serve(adapter_path, mem_fd=MEM_FD, req_fd=REQ_FD, resp_fd=RESP_FD):
    resp = io.open(resp_fd, "wb", buffering=0, closefd=False)
    try:
        kernels = kernels_of(load_adapter(adapter_path))
    except BaseException as e:  # an adapter that cannot even load: say so, then stop
        traceback.print_exc()
        _send(resp, {"type": "hello", "protocol": PROTOCOL, "ok": False, "kernels": [],
                     "error": "cannot load adapter %s: %s" % (adapter_path, _error_text(e))})
        return 1
    _send(resp, hello_of(kernels))
    worker = Worker(kernels, mem_fd)
    me = os.getpid()
    requests = io.open(req_fd, "rb", closefd=False)
    while True:
        line = requests.readline()
        if not line:
            return 0  # EOF on the request pipe: the parent is done with us
        if not line.strip():
            continue
        req = None
        try:
            req = json.loads(line.decode("utf-8"))
            if not isinstance(req, dict):
                raise BadRequest("a request is a JSON object")
            msg = worker.handle(req)
        except BadRequest as e:
            msg = {"ok": False, "error": str(e)}
        except Exception as e:  # a bug of ours or a malformed value: answer, keep serving
            traceback.print_exc()
            msg = {"ok": False, "error": _error_text(e)}
        msg = dict({"type": req.get("type") if isinstance(req, dict) else None}, **msg)
        if isinstance(req, dict) and "id" in req:
            msg["id"] = req["id"]  # the parent drops a line that answers another request
        if os.getpid() != me:
            os._exit(0)  # an adapter forked and its copy came back here: it must not answer
        _send(resp, msg)


def main(argv=None):
    # Nothing an adapter prints may reach the protocol: Python's stdout goes to stderr, and so
    # does fd 1 for C extensions that print (the parent gives us its stderr there anyway).
    sys.stdout = sys.stderr
    try:
        os.dup2(2, 1)
    except OSError:
        pass
    ap = argparse.ArgumentParser(description="pacheck Python worker (docs/worker-protocol.md)")
    ap.add_argument("--adapter", required=True, help="path of the adapter module (.py)")
    args = ap.parse_args(argv)
    try:
        return serve(args.adapter)
    except BrokenPipeError:
        return 0  # the parent went away mid-answer: nothing left to serve


if __name__ == "__main__":
    sys.exit(main())
