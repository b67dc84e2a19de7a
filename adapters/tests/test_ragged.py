"""The ragged-batch family (ABI 1.2) on the Python side: per-sequence q_len (packed rows
through cu_seqlens_q), V / output head size Dv != D, empty sequences (context 0) and the CSR page
table -- the declarations, the helpers, numpy_reference against the independent dense
computation, the worker protocol, and the real program (`pacheck run` / `pacheck check`) where a
built pacheck is found (PACHECK, or build/*/tools/pacheck under PACHECK_SOURCE_DIR or the tree).

    cd adapters/tests && /usr/bin/python3 -m unittest test_ragged
"""
import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import casegen
import pacheck_adapter as pa
from casegen import ADAPTERS
from test_adapters import assert_output, load
from test_worker import Worker

REFERENCE = os.path.join(ADAPTERS, "numpy_reference.py")


def ragged_problems():
    """A spread over the family: ragged q_lens (decode, MTP, an extend chunk), Dv, empty
    sequences, both page tables, every layout, and the options."""
    kvs = ["bf16", "fp16", "fp8_e4m3fnuz", "int8", "fp8_e4m3fn"]
    out = []
    for i, layout in enumerate(pa.HEAD_LAYOUTS * 3):
        kv = kvs[i % len(kvs)]
        sm = ["none", "per_tensor", "per_head", "per_token_block_major",
              "per_token_head_major"][i % 5]
        if kv == "int8" and sm == "none":
            sm = "per_head"
        q_lens = [[1, 6, 17], [3, 1], [2, 2, 1, 5]][i % 3]
        ctx = [[40, 0, 70], [3, 50], [0, 2, 33, 5]][i % 3]
        out.append(dict(seed=100 + i, layout=layout, kv_dtype=kv, scale_mode=sm,
                        B=32 if layout == "shuffled" else [4, 16, 32][i % 3], q_lens=q_lens,
                        ctx=ctx, D=[32, 64, 32][i % 3], Dv=[64, 32, None][i % 3],
                        csr=i % 2 == 0, window=7 if i % 4 == 1 else 0,
                        softcap=10.0 if i % 5 == 2 else 0.0, alibi=i % 3 == 0, sinks=i % 2 == 1,
                        page_pad=16 if i % 2 else 0, Hq=[4, 8, 2][i % 3], Hkv=[2, 2, 1][i % 3]))
    return out


class DeclarationTest(unittest.TestCase):
    def test_abi_1_2_capability_keys(self):
        cap = pa.capability()
        self.assertEqual((cap["ragged"], cap["empty_rows"], cap["page_tables"], cap["head_sizes_v"],
                          cap["lse_base"]), (False, False, ["padded"], [], 0))
        cap = pa.capability(**pa.ragged_capability(max_q_len=64, head_sizes_v=[64]))
        self.assertEqual((cap["ragged"], cap["empty_rows"], cap["page_tables"], cap["head_sizes_v"],
                          cap["max_q_len"]), (True, True, ["padded", "csr"], [64], 64))
        with self.assertRaises(ValueError):
            pa.capability(page_tables=["coo"])
        with self.assertRaises(ValueError):
            pa.capability(page_tables=[])
        with self.assertRaises(ValueError):
            pa.capability(lse_base=10)
        self.assertEqual(pa.capability(lse_base=2)["lse_base"], 2)

    def test_adapters_declare_the_family(self):
        for name in ("numpy_reference", "torch_sdpa", "torch_flex_paged"):
            cap = load(name).CAPABILITY
            self.assertTrue(cap["ragged"] and cap["empty_rows"], name)
            self.assertEqual(cap["page_tables"], ["padded", "csr"], name)
            # numpy_reference also takes MLA's Dv = 512 (test_mla.py).
            self.assertEqual(cap["head_sizes_v"][:2], [64, 128], name)
            self.assertEqual(cap["lse_base"], 0, name)
            self.assertGreaterEqual(cap["max_q_len"], 300, name)
        for name in ("aiter_paged_attention_common",):  # not declared: stays at the 1.1 behaviour
            self.assertFalse(load(name).CAPABILITY["ragged"])


class HelperTest(unittest.TestCase):
    def test_csr_and_padded_tables_give_the_same_slots(self):
        kw = dict(seed=5, q_lens=[1, 4, 2], ctx=[17, 0, 64], B=16, D=32, Dv=64, layout="vllm")
        padded, csr = casegen.make_case(**kw), casegen.make_case(csr=True, **kw)
        bp, bc = casegen.buffers(padded), casegen.buffers(csr)
        self.assertIsNone(bc.block_tables)
        np.testing.assert_array_equal(pa.contexts(csr.problem, bc), [17, 0, 64])
        np.testing.assert_array_equal(pa.contexts(padded.problem, bp), [17, 0, 64])
        for a, b in zip(pa.token_slots(padded.problem, bp), pa.token_slots(csr.problem, bc)):
            np.testing.assert_array_equal(a, b)
        # The old form (a padded table and the contexts) still works.
        old = pa.token_slots(padded.problem, bp.block_tables, bp.context_lens)
        for a, b in zip(old, pa.token_slots(padded.problem, bp)):
            np.testing.assert_array_equal(a, b)
        blk, tok, valid = pa.token_slots(csr.problem, bc)
        self.assertFalse(valid[1].any())  # the empty sequence: real (non-garbage) slots, masked
        self.assertTrue((blk[1] == blk[0, 0]).all() and (tok[1] == 0).all())
        for which, Dw in (("k", 32), ("v", 64)):
            vals, ok = pa.gather_kv(csr.problem, bc, which)
            self.assertEqual(vals.shape, (3, 64, 2, Dw))
            self.assertFalse(np.isnan(vals[ok]).any())
            want = (csr.logical_k if which == "k" else csr.logical_v)[2]
            np.testing.assert_allclose(vals[2], want, rtol=0, atol=0)

    def test_sequences_rows_and_positions(self):
        c = casegen.make_case(seed=6, q_lens=[1, 3, 2], ctx=[9, 3, 0], csr=True)
        p, b = c.problem, casegen.buffers(c)
        self.assertTrue(p.ragged and p.csr)
        self.assertEqual((p.total_q, p.max_q_len, p.head_size_v), (6, 3, 32))
        self.assertEqual(b.q.shape, (6, 4, 32))
        self.assertEqual(b.rows("lse").shape, (6, 4))
        seqs = pa.sequences(p, b)
        self.assertEqual([(s.row0, s.row1, s.ctx, s.empty) for s in seqs],
                         [(0, 1, 9, False), (1, 4, 3, False), (4, 6, 0, True)])
        np.testing.assert_array_equal(seqs[1].positions(), [0, 1, 2])
        seq, pos = pa.row_positions(p, b)
        np.testing.assert_array_equal(seq, [0, 1, 1, 1, 2, 2])
        np.testing.assert_array_equal(pos, [8, 0, 1, 2, -2, -1])
        np.testing.assert_array_equal(pa.visible(p, 3, 3, q_len=3), np.tril(np.ones((3, 3), bool)))
        # A uniform batch: rows s * q_len without the buffer, and the same through it.
        u = casegen.make_case(seed=7, L=2, ctx=[5, 9])
        np.testing.assert_array_equal(pa.cu_seqlens(u.problem, casegen.buffers(u)), [0, 2, 4])
        self.assertEqual(casegen.buffers(u).rows("q").shape, (4, 4, 32))


class NumpyReferenceRaggedTest(unittest.TestCase):
    def test_agrees_with_dense_attention(self):
        mod = load("numpy_reference", PACHECK_PLANT_BUG="")
        for kw in ragged_problems():
            c = casegen.make_case(**kw)
            b = casegen.buffers(c)
            mod.run(c.problem, b)
            assert_output(self, c, b, str(kw))

    def test_empty_rows(self):
        mod = load("numpy_reference", PACHECK_PLANT_BUG="")
        for sinks in (False, True):
            c = casegen.make_case(seed=8, S=3, L=2, ctx=[0, 20, 0], sinks=sinks, csr=sinks)
            b = casegen.buffers(c)
            mod.run(c.problem, b)
            self.assertTrue((pa.decode(b.out[0], "bf16") == 0).all())
            want = c.arrays["sinks"] if sinks else np.full(4, -np.inf, np.float32)
            np.testing.assert_array_equal(b.lse[2], np.broadcast_to(want, (2, 4)))
            assert_output(self, c, b, "sinks=%s" % sinks)

    def test_planted_bugs_show_on_a_ragged_batch(self):
        kw = dict(seed=9, q_lens=[1, 5, 3], ctx=[40, 37, 0], B=4, D=32, Dv=64, csr=True,
                  layout="vllm", kv_dtype="fp8_e4m3fnuz", scale_mode="per_token_head_major")
        c = casegen.make_case(**kw)
        want, _ = casegen.dense_attention(c)
        for bug in ("scale", "v_layout", "causal"):
            mod = load("numpy_reference", PACHECK_PLANT_BUG=bug)
            b = casegen.buffers(c)
            mod.run(c.problem, b)
            got = pa.decode(b.out, "bf16")
            off = ~(np.abs(got - want) <= 0.05)  # NaN (a poisoned scale read) counts as off
            self.assertTrue(off.any(), bug)


class WorkerRaggedTest(unittest.TestCase):
    def test_ragged_csr_requests(self):
        w = Worker(REFERENCE, {"PACHECK_PLANT_BUG": ""})
        self.addCleanup(w.dispose)
        self.assertTrue(w.read()["ok"])
        for kw in ragged_problems()[:6]:
            c = casegen.make_case(**kw)
            r, specs = w.run(c, "numpy_reference")
            self.assertEqual(r["status"], "ok", r)
            assert_output(self, c, w.output(c, specs), "through the worker: %s" % kw)
        # A ragged problem without its row offsets, or a CSR one without its arrays: refused.
        c = casegen.make_case(seed=3, q_lens=[1, 2], csr=True)
        cap, specs = casegen.place(c, w.mem)
        for drop in ("cu_seqlens_q", "kv_indptr"):
            bad = dict(specs)
            del bad[drop]
            r = w.ask({"type": "run", "kernel": "numpy_reference", "problem": dict(c.problem),
                       "capacity": cap, "buffers": bad})
            self.assertFalse(r["ok"])
            self.assertIn(drop, r["error"])
        self.assertEqual(w.close(), 0)


def find_pacheck():
    if os.environ.get("PACHECK"):
        return os.environ["PACHECK"]
    roots = [os.environ.get("PACHECK_SOURCE_DIR"), os.path.dirname(ADAPTERS)]
    for root in filter(None, roots):
        # build/host first (the host preset, as pacheck_pytest looks), then any other preset's.
        first = os.path.join(root, "build", "host", "tools", "pacheck")
        rest = sorted(glob.glob(os.path.join(root, "build", "*", "tools", "pacheck")))
        for path in [first] + rest:
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
    return None


PACHECK = find_pacheck()

# The example, then the family over layouts, tables, dtypes and options.
CASES = [
    {"num_seqs": 3, "q_lens": [1, 6, 40], "context_lens": [100, 0, 300], "head_size": 128,
     "head_size_v": 64, "num_q_heads": 8, "num_kv_heads": 2, "kv_layout": "nhd",
     "page_table": "csr"},
    {"num_seqs": 3, "q_lens": [1, 6, 40], "context_lens": [100, 0, 300], "head_size": 128,
     "head_size_v": 64, "num_q_heads": 8, "num_kv_heads": 2, "kv_layout": "shuffled",
     "page_table": "padded", "sinks": True, "kv_dtype": "int8", "kv_scale": "per_token_block_major"},
    {"num_seqs": 3, "q_lens": [5, 1, 17], "context_lens": [5, 70, 33], "head_size": 64,
     "head_size_v": 128, "num_q_heads": 4, "num_kv_heads": 1, "kv_layout": "vllm",
     "page_table": "csr", "alibi": True, "sliding_window": 9, "kv_dtype": "fp8_e4m3fnuz",
     "kv_scale": "per_token_head_major", "page_pad": 32},
    {"num_seqs": 4, "q_len": 3, "context_lens": [0, 17, 5, 64], "head_size": 64,
     "num_q_heads": 4, "num_kv_heads": 4, "kv_layout": "hnd", "page_table": "csr", "sinks": True},
    {"num_seqs": 2, "q_len": 2, "context_lens": [33, 0], "head_size": 128, "head_size_v": 64,
     "num_q_heads": 8, "num_kv_heads": 2, "logit_softcap": 30.0},
]


@unittest.skipIf(PACHECK is None, "no built pacheck (set PACHECK or PACHECK_SOURCE_DIR)")
class ProgramTest(unittest.TestCase):
    """numpy_reference under the real program: judged by pacheck's oracle and verdict."""

    def pacheck(self, *args, env=None, timeout=280):
        e = dict(os.environ, PACHECK_PYTHON=os.environ.get("PACHECK_PYTHON", sys.executable))
        e.pop("PACHECK_PLANT_BUG", None)
        e.update(env or {})
        return subprocess.run([PACHECK] + list(args), env=e, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout)

    def run_cases(self, cases, env=None):
        with tempfile.TemporaryDirectory() as d:
            case_file, report = os.path.join(d, "cases.json"), os.path.join(d, "report.json")
            with open(case_file, "w") as f:
                json.dump(cases, f)
            r = self.pacheck("run", "--kernel", "py:" + REFERENCE, "--case", case_file,
                             "--no-dispatch", "--quiet", "--report", report, env=env)
            self.assertTrue(os.path.exists(report), "%s wrote no report:\n%s" % (PACHECK, r.stdout))
            with open(report) as f:
                return r, json.load(f)["cases"]

    def test_run_passes_on_ragged_cases(self):
        r, records = self.run_cases(CASES)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(len(records), len(CASES))
        for rec in records:
            self.assertEqual(rec["status"], "Ok", "%s: %s" % (rec["case"]["vars"], rec["message"]))

    def test_the_planted_bug_fails_a_ragged_case(self):
        r, records = self.run_cases(CASES[2:3], env={"PACHECK_PLANT_BUG": "scale"})
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(records[0]["status"], "Fail")

    def test_check_holds(self):
        # Every property that applies to the adapter holds on the family's cases: the comparisons
        # with the oracle, the relations (relocation, gqa, and the family's batch, extend and
        # zero_q) and the refusals.
        r = self.pacheck("check", "--kernel", "py:" + REFERENCE, "--cases", "40", "--seed", "22", "--no-capture",
                         "--properties", "reference,relocation,kv_scale,gqa,poison,refusal,writer,batch,extend,zero_q")
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertNotIn("FAILED", r.stdout)

    def test_metamorphic_twins_of_the_family(self):
        # The minimal cases `pacheck check` once shrank to when pacheck's own twins mishandled the
        # family (relocation moving block_tables but not kv_indices; the gqa twin and the writer
        # property sizing V with D instead of Dv): they hold now and must keep holding.
        base = {"block_size": 16, "head_size": 16, "head_size_v": 64, "kv_layout": "nhd",
                "num_q_heads": 2, "num_kv_heads": 1, "num_seqs": 2, "context_lens": [9, 5],
                "q_len": 2}
        failures = []
        for prop, extra in (("relocation", {"page_table": "csr", "head_size_v": 0}),
                            ("gqa", {}), ("writer", {"head_size": 80})):
            case = json.dumps(dict(base, **extra))
            r = self.pacheck("check", "--kernel", "py:" + REFERENCE, "--case", case,
                             "--properties", prop, "--no-capture")
            if r.returncode != 0:
                failures.append("%s:\n%s" % (prop, r.stdout[-1500:]))
        self.assertEqual(failures, [])
