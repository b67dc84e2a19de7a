"""The Python worker speaks docs/worker-protocol.md: a real process with a memfd on fd 3 and
pipes on fds 4 and 5, driven the way pacheck drives it."""
import fcntl
import json
import os
import select
import subprocess
import sys
import tempfile
import textwrap
import unittest

import numpy as np

import casegen
import pacheck_adapter as pa
from casegen import ADAPTERS, HERE
from test_adapters import assert_output

try:
    import torch
except ImportError:
    torch = None

WORKER = os.path.join(ADAPTERS, "pacheck_worker.py")
PLUGINS = os.path.join(HERE, "plugins")


class Worker(object):
    """A worker process: memfd on fd 3, requests on fd 4, responses on fd 5."""

    def __init__(self, adapter, env=None):
        self.mem = os.memfd_create("pacheck-test")
        r4, self.w4 = os.pipe()
        self.r5, w5 = os.pipe()
        # Park the child's ends above 100 first, so dup2 onto 3/4/5 cannot clobber one of them.
        high = [fcntl.fcntl(f, fcntl.F_DUPFD_CLOEXEC, 100) for f in (self.mem, r4, w5)]

        def child_fds():
            for src, dst in zip(high, (3, 4, 5)):
                os.dup2(src, dst)  # dup2's copy is inheritable

        self.err = tempfile.TemporaryFile()
        e = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
        self.proc = subprocess.Popen([sys.executable, WORKER, "--adapter", adapter],
                                     preexec_fn=child_fds, close_fds=False, env=e,
                                     stdin=subprocess.DEVNULL, stdout=self.err, stderr=self.err)
        for f in high + [r4, w5]:
            os.close(f)
        self.resp = os.fdopen(self.r5, "rb")

    def read(self, timeout=120):
        ready, _, _ = select.select([self.resp], [], [], timeout)
        if not ready:
            raise AssertionError("no answer from the worker in %ds; stderr:\n%s"
                                 % (timeout, self.stderr()))
        line = self.resp.readline()
        if not line:
            raise AssertionError("worker closed fd 5; stderr:\n" + self.stderr())
        return json.loads(line.decode())

    def ask(self, msg):
        os.write(self.w4, (msg if isinstance(msg, str) else json.dumps(msg)).encode() + b"\n")
        return self.read()

    def run(self, case, kernel, extra=0):
        capacity, specs = casegen.place(case, self.mem, extra)
        r = self.ask({"type": "run", "kernel": kernel, "problem": dict(case.problem),
                      "capacity": capacity, "buffers": specs})
        return r, specs

    def output(self, case, specs):
        p = case.problem
        out = casegen.read_back(self.mem, specs["out"], pa.code_dtype(p.q_dtype),
                                case.arrays["out"].shape)
        lse = None
        if "lse" in specs:
            lse = casegen.read_back(self.mem, specs["lse"], np.float32, case.arrays["lse"].shape)
        return pa.Buffers(out=out, lse=lse)

    def close(self):
        """EOF on fd 4; returns the exit status."""
        os.close(self.w4)
        self.w4 = None
        return self.proc.wait(timeout=60)

    def dispose(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.w4 is not None:
            os.close(self.w4)
        self.resp.close()
        self.err.close()
        os.close(self.mem)

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace")


class WorkerProtocolTest(unittest.TestCase):
    def start(self, adapter, env=None):
        w = Worker(adapter, env)
        self.addCleanup(w.dispose)
        return w

    def test_hello_run_remap_and_eof(self):
        w = self.start(os.path.join(ADAPTERS, "numpy_reference.py"), {"PACHECK_PLANT_BUG": ""})
        hello = w.read()
        self.assertEqual((hello["type"], hello["protocol"], hello["ok"]), ("hello", 1, True))
        (k,) = hello["kernels"]
        self.assertEqual((k["name"], k["memory"], k["has_supports"]),
                         ("numpy_reference", "host", False))
        self.assertEqual(set(k["capability"]), set(pa.capability()))
        self.assertEqual(k["numerics"], {"p_round": "fp32", "qk_round": "fp32", "partial_round": "fp32",
                                         "v_round": "fp32", "pv_round": "fp32"})
        c = casegen.make_case(seed=21, layout="vllm", kv_dtype="fp8_e4m3fnuz",
                              scale_mode="per_token_block_major", L=2, page_pad=8, alibi=True,
                              sinks=True)
        self.assertEqual(w.ask({"type": "workspace", "kernel": "numpy_reference",
                                "problem": dict(c.problem)}),
                         {"type": "workspace", "ok": True, "bytes": 0})
        r, specs = w.run(c, "numpy_reference")
        self.assertEqual((r["type"], r["ok"], r["status"], r["wrote_lse"]),
                         ("run", True, "ok", True), r)
        self.assertGreaterEqual(r["elapsed_ms"], 0)
        assert_output(self, c, w.output(c, specs), "through the worker")
        gap = os.pread(w.mem, 256, specs["out"][0] + specs["out"][1])
        self.assertEqual(gap, bytes(256))  # nothing written past the end of out
        # A larger launch: the parent grows the memory file, the worker remaps it.
        big = casegen.make_case(seed=22, S=3, ctx=[300, 90, 257], layout="shuffled",
                                kv_dtype="bf16", D=64, B=16, Hq=8, Hkv=2)
        r, specs = w.run(big, "numpy_reference", extra=1 << 20)
        self.assertEqual(r["status"], "ok", r)
        assert_output(self, big, w.output(big, specs), "after remap")
        self.assertEqual(w.close(), 0)

    def test_an_adapter_exception_is_an_error_status_and_the_worker_keeps_serving(self):
        w = self.start(os.path.join(PLUGINS, "raises_heuristic.py"))
        self.assertEqual(w.read()["kernels"][0]["name"], "raises_heuristic")
        c = casegen.make_case(seed=3, D=64, B=16, Hq=8, Hkv=2)
        for _ in range(2):
            r, _specs = w.run(c, "raises_heuristic")
            self.assertEqual((r["ok"], r["status"], r["wrote_lse"]), (True, "error", False))
            self.assertTrue(r["error"].startswith("RuntimeError: get_heuristic_kernel: cannot "
                                                  "get heuristic kernel!"), r["error"])
            self.assertIn("gqa:4 block_size:32", r["error"])
        # Malformed requests: "ok": false, and the worker is still there.
        self.assertFalse(w.ask("this is not json")["ok"])
        self.assertFalse(w.ask({"type": "dance"})["ok"])
        bad = w.ask({"type": "run", "kernel": "nope", "problem": dict(c.problem),
                     "capacity": 64, "buffers": {}})
        self.assertIn("unknown kernel", bad["error"])
        cap, specs = casegen.place(c, w.mem)
        specs["q"] = [cap - 64, 4096]
        out = w.ask({"type": "run", "kernel": "raises_heuristic", "problem": dict(c.problem),
                     "capacity": cap, "buffers": specs})
        self.assertFalse(out["ok"])
        self.assertIn("outside capacity", out["error"])
        r, _specs = w.run(c, "raises_heuristic")
        self.assertEqual(r["status"], "error")
        self.assertIn("cannot get heuristic kernel", w.stderr())  # the traceback, for people
        self.assertEqual(w.close(), 0)

    def test_kernel_family_supports_and_not_supported(self):
        w = self.start(os.path.join(ADAPTERS, "vllm_paged_attention.py"),
                       {"PACHECK_NATIVE_FP8": "fp8_e4m3fn"})
        hello = w.read()
        self.assertEqual([k["name"] for k in hello["kernels"]],
                         ["vllm_paged_attention_v1", "vllm_paged_attention_v2"])
        self.assertTrue(all(k["has_supports"] for k in hello["kernels"]))
        self.assertEqual(hello["kernels"][0]["capability"]["kv_layouts"], ["vllm"])
        c = casegen.make_case(seed=4, layout="vllm", kv_dtype="fp16", q_dtype="bf16", D=64)
        r = w.ask({"type": "supports", "kernel": "vllm_paged_attention_v2",
                   "problem": dict(c.problem)})
        self.assertEqual((r["ok"], r["supports"]), (True, False))
        self.assertIn("q dtype", r["why"])
        r, _specs = w.run(c, "vllm_paged_attention_v1")
        self.assertEqual((r["ok"], r["status"]), (True, "not_supported"), r)
        self.assertIn("q dtype", r["error"])
        self.assertEqual(w.close(), 0)

    def test_prints_stay_off_the_protocol_and_sys_exit_is_an_error(self):
        src = textwrap.dedent('''
            import os, sys
            import pacheck_adapter as pa
            print("hello from import")
            NAME, VERSION, PROVENANCE, MEMORY = "noisy", "1", "test", "host"
            CAPABILITY = pa.capability(q_dtypes=["bf16"], kv_dtypes=["bf16"],
                                       kv_layouts=["nhd"], scale_modes=["none"],
                                       head_sizes=[32], block_sizes=[16])
            NUMERICS = pa.numerics()
            def run(p, b):
                print("print from run")
                os.write(1, b"raw write to fd 1\\n")
                if p["num_seqs"] == 2:
                    sys.exit(3)
                b.out[...] = b.q
        ''')
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "noisy.py")
            with open(path, "w") as f:
                f.write(src)
            w = self.start(path)
            self.assertTrue(w.read()["ok"])
            c = casegen.make_case(seed=5, S=1, ctx=[20], want_lse=False)
            r, specs = w.run(c, "noisy")
            self.assertEqual(r["status"], "ok", r)
            self.assertFalse(r["wrote_lse"])
            np.testing.assert_array_equal(w.output(c, specs).out, c.arrays["q"])
            r, _specs = w.run(casegen.make_case(seed=5, S=2, want_lse=False), "noisy")
            self.assertEqual(r["status"], "error")
            self.assertIn("SystemExit: 3", r["error"])
            self.assertEqual(w.close(), 0)
            err = w.stderr()
            for text in ("hello from import", "print from run", "raw write to fd 1"):
                self.assertIn(text, err)

    def test_an_adapter_that_cannot_load_says_so_in_its_hello(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "broken.py")
            with open(path, "w") as f:
                f.write("import no_such_engine_module\n")
            w = self.start(path)
            hello = w.read()
            self.assertFalse(hello["ok"])
            self.assertIn("no_such_engine_module", hello["error"])
            self.assertEqual(w.proc.wait(timeout=60), 1)

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_torch_sdpa_through_the_worker(self):
        w = self.start(os.path.join(ADAPTERS, "torch_sdpa.py"))
        self.assertTrue(w.read()["ok"])
        c = casegen.make_case(seed=23, layout="shuffled", kv_dtype="fp8_e4m3fn", B=32,
                              scale_mode="per_token_head_major", L=2, alibi=True, sinks=True)
        r, specs = w.run(c, "torch_sdpa")
        self.assertEqual(r["status"], "ok", r)
        got = w.output(c, specs)
        o, l = casegen.dense_attention(c)
        self.assertLess(np.abs(pa.decode(got.out, "bf16") - o).max(), 2e-2 * np.abs(o).max())
        np.testing.assert_allclose(got.lse, l, rtol=1e-3)
        self.assertEqual(w.close(), 0)

    def test_a_device_kernel_gets_host_buffers_where_device_buffers_cannot_open(self):
        # torch_sdpa declares device memory; without torch (or with PACHECK_HOST_BUFFERS=1) the
        # hello says the worker opens no device buffers, so pacheck sends the memory file.
        envs = [{"PACHECK_HOST_BUFFERS": "1"}] + ([{}] if torch is None else [])
        for env in envs:
            w = self.start(os.path.join(ADAPTERS, "torch_sdpa.py"), env)
            hello = w.read()
            self.assertTrue(hello["ok"], hello)
            self.assertEqual(hello["kernels"][0]["memory"], "device")
            self.assertIs(hello["device_buffers"], False, env)
            self.assertEqual(w.close(), 0)
        w = self.start(os.path.join(ADAPTERS, "numpy_reference.py"))
        self.assertIs(w.read()["device_buffers"], False)  # a host kernel: never asked
        self.assertEqual(w.close(), 0)

    def test_engine_adapters_say_hello_without_their_engines(self):
        for name in ("aiter_paged_attention_common", "vllm_paged_attention", "torch_sdpa",
                     "torch_flex_paged"):
            w = self.start(os.path.join(ADAPTERS, name + ".py"))
            hello = w.read()
            self.assertTrue(hello["ok"], "%s: %s" % (name, hello))
            self.assertEqual(w.close(), 0)


if __name__ == "__main__":
    unittest.main()
