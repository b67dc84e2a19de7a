"""The MLA case family (kv_layout mla_joint / mla_split: one latent KV head, K = Dv latent values
then D - Dv rope values, V = K's latent part) on the Python side: the helpers' offsets and
gathers against the contract's index formula written out in casegen.mla_offset, numpy_reference
against a direct dense computation, the torch MLA reference (where torch is installed), and the
argument mapping of the FlashInfer and aiter MLA adapters, planned in numpy and called on the
recording stubs in tests/stubs (without torch the stubs receive numpy arrays).

    cd adapters/tests && /usr/bin/python3 -m unittest test_mla
"""
import itertools
import math
import os
import sys
import unittest

import numpy as np

import casegen
import pacheck_adapter as pa
from casegen import HERE
from test_adapters import assert_output, load

STUBS = os.path.join(HERE, "stubs")

try:
    import torch
except ImportError:
    torch = None


def mla_cases():
    """A spread over both layouts, both page tables, uniform and ragged batches, bf16 and fp8
    (per-tensor scale or none), page padding and page sizes."""
    out = []
    for i, (layout, csr) in enumerate(itertools.product(pa.MLA_LAYOUTS, (False, True))):
        out.append(dict(seed=30 + i, layout=layout, csr=csr, ctx=[37, 5, 64][:2 + i % 2],
                        B=[16, 1, 64, 4][i], page_pad=[0, 24, 8, 0][i],
                        L=1 + i % 2, Hq=[16, 8, 4, 12][i]))
        out.append(dict(seed=40 + i, layout=layout, csr=csr, ctx=[90, 33],
                        q_lens=[4, 1], B=16, kv_dtype=["fp8_e4m3fn", "fp8_e4m3fnuz"][i % 2],
                        scale_mode=["per_tensor", "none"][i // 2], Hq=16, page_pad=16 * (i % 2),
                        q_dtype=["bf16", "fp16"][i % 2]))
    return out


def small(**kw):
    """A quick case: D = 72 (Dv 64, rope 8), for the tests that need many."""
    return casegen.make_mla_case(**dict(dict(D=72, Dv=64, Hq=4), **kw))


class ContractTest(unittest.TestCase):
    def test_vocabulary(self):
        self.assertEqual(pa.LAYOUTS.index("mla_joint"), 4)  # PACHECK_LAYOUT_MLA_JOINT
        self.assertEqual(pa.LAYOUTS.index("mla_split"), 5)  # PACHECK_LAYOUT_MLA_SPLIT
        self.assertEqual(pa.make_problem(dict(kv_layout=5))["kv_layout"], "mla_split")
        self.assertEqual(pa.HEAD_LAYOUTS + pa.MLA_LAYOUTS, pa.LAYOUTS)
        # broad_capability keeps the per-head layouts: an adapter declares MLA on purpose.
        self.assertEqual(pa.broad_capability()["kv_layouts"], list(pa.HEAD_LAYOUTS))
        cap = pa.mla_capability()
        self.assertEqual((cap["kv_layouts"], cap["head_sizes"], cap["head_sizes_v"]),
                         (["mla_joint", "mla_split"], [576], [512]))
        self.assertEqual(cap["scale_modes"], ["none", "per_tensor"])
        self.assertTrue(cap["custom_scale"] and cap["ragged"])

    def test_offsets_rows_and_segments(self):
        D, Dv, B, NB = 576, 512, 16, 5
        for layout in pa.MLA_LAYOUTS:
            joint = layout == "mla_joint"
            ps, ps_v = (B * D + 40, B * D + 40) if joint else (B * (D - Dv) + 24, B * Dv + 8)
            p = pa.make_problem(dict(num_kv_heads=1, block_size=B, head_size=D, head_size_v=Dv,
                                     page_stride=ps, page_stride_v=ps_v, num_blocks=NB,
                                     kv_dtype="bf16", kv_layout=layout))
            self.assertTrue(p.mla)
            self.assertEqual((pa.cache_row(p, "k"), pa.cache_row(p, "v")),
                             (D, D) if joint else (D - Dv, Dv))
            self.assertEqual((p.dense_page, p.dense_page_v),
                             (B * D, B * D) if joint else (B * (D - Dv), B * Dv))
            self.assertEqual(pa.pool_elements(p, "k"), (NB - 1) * ps + p.dense_page)
            self.assertEqual(pa.pool_elements(p, "v"), (NB - 1) * ps_v + p.dense_page_v)
            self.assertEqual(pa.kv_segments(p, "v"), [("v", 0, Dv)])
            self.assertEqual(pa.kv_segments(p, "k"),
                             [("k", 0, D)] if joint else [("v", 0, Dv), ("k", Dv, D)])
            for which in "kv":
                Dw = D if which == "k" else Dv
                blk, tok, d = np.meshgrid([0, 3, NB - 1], np.arange(B), np.arange(Dw),
                                          indexing="ij")
                got = pa.kv_offsets(p, which, blk, 0, tok, d)
                for c, d0, d1 in pa.kv_segments(p, which):
                    want_c, want = casegen.mla_offset(layout, which, B, D, Dv, ps, ps_v,
                                                      blk[..., d0:d1], tok[..., d0:d1],
                                                      d[..., d0:d1])
                    self.assertEqual(c, want_c, (layout, which, d0))
                    np.testing.assert_array_equal(got[..., d0:d1], want,
                                                  err_msg="%s %s" % (layout, which))
                    # Each cache's page is one dense [B][row] block.
                    page = got[1][..., d0:d1] - 3 * (ps if c == "k" else ps_v)
                    self.assertEqual(page.min(), 0)
                    self.assertLess(page.max(), B * pa.cache_row(p, c))

    def test_the_joint_v_reads_rows_of_d_not_dv(self):
        p = pa.make_problem(dict(num_kv_heads=1, block_size=4, head_size=576, head_size_v=512,
                                 page_stride=4 * 576, kv_dtype="bf16", kv_layout="mla_joint"))
        self.assertEqual(int(pa.kv_offsets(p, "v", 2, 0, 3, 7)), 2 * 4 * 576 + 3 * 576 + 7)


class GatherTest(unittest.TestCase):
    """The helpers' gathers against the logical tokens the case was packed from."""

    def check_gather(self, c):
        p, b = c.problem, casegen.buffers(c)
        blk, tok, valid = pa.token_slots(p, b)
        for which, logical in (("k", c.logical_k), ("v", c.logical_v)):
            vals, ok = pa.gather_kv(p, b, which, dtype=np.float64)
            np.testing.assert_array_equal(ok, valid)
            self.assertEqual(vals.shape[2:], (1, p.head_size if which == "k" else p.head_size_v))
            for s, n in enumerate(c.ctx):
                np.testing.assert_array_equal(vals[s, :n], logical[s],
                                              err_msg="%s %s s=%d" % (p.kv_layout, which, s))
            # The codes: read straight from the caches by the contract's formula.
            codes = pa.read_codes(p, b, which, blk, tok)
            for s, t in [(0, 0), (0, c.ctx[0] - 1), (len(c.ctx) - 1, c.ctx[-1] // 2)]:
                page, slot = int(blk[s, t]), int(tok[s, t])
                for d in (0, p.head_size_v - 1, p.head_size - 1):
                    if which == "v" and d >= p.head_size_v:
                        continue
                    cache, off = casegen.mla_offset(p.kv_layout, which, p.block_size,
                                                    p.head_size, p.head_size_v, p.page_stride,
                                                    p.page_stride_v, page, slot, d)
                    self.assertEqual(codes[s, t, 0, d], c.arrays[cache + "_cache"][off])

    def test_both_layouts_padded_and_csr(self):
        for kw in mla_cases():
            kw = {k: v for k, v in kw.items() if k not in ("L", "Hq", "q_dtype", "q_lens")}
            self.check_gather(casegen.make_mla_case(Hq=4, **kw))

    def test_split_k_takes_its_latent_part_from_the_v_cache(self):
        c = small(layout="mla_split", ctx=[20], B=4)
        p, b = c.problem, casegen.buffers(c)
        before = pa.gather_kv(p, b, "k")[0]
        b.v_cache[:] = pa.encode(np.zeros(1), "bf16")[0]  # ckv zeroed: K's latent part is 0
        after = pa.gather_kv(p, b, "k")[0]
        self.assertTrue((after[..., :64] == 0).all())
        np.testing.assert_array_equal(after[..., 64:], before[..., 64:])
        self.assertTrue((pa.gather_kv(p, b, "v")[0] == 0).all())

    def test_joint_v_is_read_from_the_v_cache(self):
        c = small(layout="mla_joint", ctx=[9])
        p, b = c.problem, casegen.buffers(c)
        b.k_cache[:] = pa.POISON["bf16"]
        self.assertFalse(np.isnan(pa.gather_kv(p, b, "v")[0]).any())

    def test_scatter_is_the_inverse_of_the_gather(self):
        for layout in pa.MLA_LAYOUTS:
            c = small(layout=layout, ctx=[13, 6], B=4, page_pad=8)
            p, b = c.problem, casegen.buffers(c)
            blk, tok, valid = pa.token_slots(p, b)
            codes = pa.read_codes(p, b, "k", blk, tok)
            fresh = {w: np.full_like(c.arrays[w + "_cache"], pa.POISON["bf16"]) for w in "kv"}
            pa.scatter_codes(p, fresh, "k", blk[valid][None], tok[valid][None],
                             codes[valid][None])
            np.testing.assert_array_equal(pa.read_codes(p, fresh, "k", blk, tok)[valid],
                                          codes[valid])
            if layout == "mla_split":
                with self.assertRaises(ValueError):  # K spans both caches: one is not enough
                    pa.scatter_codes(p, fresh["k"], "k", blk, tok, codes)


class NumpyReferenceTest(unittest.TestCase):
    def setUp(self):
        self.ref = load("numpy_reference", PACHECK_PLANT_BUG="")

    def test_declares_the_mla_family(self):
        cap = self.ref.CAPABILITY
        for name in pa.LAYOUTS:
            self.assertIn(name, cap["kv_layouts"])
        self.assertIn(576, cap["head_sizes"])
        self.assertIn(512, cap["head_sizes_v"])
        self.assertEqual(cap["max_gqa"], 64)  # MLA's query heads as any other's
        self.assertTrue({"none", "per_tensor"} <= set(cap["scale_modes"]))
        self.assertTrue({"bf16", "fp8_e4m3fn", "fp8_e4m3fnuz"} <= set(cap["kv_dtypes"]))

    def test_agrees_with_dense_attention(self):
        empty = dict(layout="mla_split", ctx=[0, 12], q_lens=[2, 3], Hq=8, csr=True)
        for kw in mla_cases() + [empty]:
            c = casegen.make_mla_case(**kw)
            b = casegen.buffers(c)
            self.ref.run(c.problem, b)
            assert_output(self, c, b, str(kw))

    def test_direct_computation_of_one_case(self):
        # Written out here with no helper: K = the joint rows, V = their first Dv, fp64.
        c = casegen.make_mla_case(seed=7, layout="mla_joint", ctx=[21], L=2, Hq=4, B=8)
        p, b = c.problem, casegen.buffers(c)
        self.ref.run(p, b)
        kc = pa.decode(c.arrays["k_cache"], "bf16").astype(np.float64)
        bt = c.arrays["block_tables"][0]
        K = np.stack([kc[bt[t // 8] * p.page_stride + (t % 8) * 576:][:576] for t in range(21)])
        V = K[:, :512]
        q = c.q[0]  # [L, Hq, 576]
        for i in range(2):
            x = q[i] @ K[:20 + i].T / math.sqrt(192)  # position 19 + i sees 20 + i keys
            e = np.exp(x - x.max(-1, keepdims=True))
            o = (e / e.sum(-1, keepdims=True)) @ V[:20 + i]
            got = pa.decode(b.out[0, i], "bf16")
            np.testing.assert_allclose(got, o, rtol=2 ** -7, atol=1e-6)
            np.testing.assert_allclose(b.lse[0, i], x.max(-1) + np.log(
                np.exp(x - x.max(-1, keepdims=True)).sum(-1)), rtol=1e-6)

    def test_planted_v_layout_bug_shows_on_the_joint_cache(self):
        buggy = load("numpy_reference", PACHECK_PLANT_BUG="v_layout")
        try:
            c = small(layout="mla_joint", ctx=[30], B=8)
            b = casegen.buffers(c)
            buggy.run(c.problem, b)
            with self.assertRaises(AssertionError):  # V read in rows of Dv, not D
                assert_output(self, c, b, "v_layout")
        finally:
            load("numpy_reference", PACHECK_PLANT_BUG="")


@unittest.skipIf(torch is None, "torch is not installed")
class TorchGatherTest(unittest.TestCase):
    def test_device_gather_is_the_host_gather(self):
        dev = pa.default_device()
        for kw in mla_cases():
            c = casegen.make_mla_case(**kw)
            b = casegen.buffers(c)
            k, v, valid = pa.gather_kv_torch(c.problem, b, dev)
            for which, got in (("k", k), ("v", v)):
                want, ok = pa.gather_kv(c.problem, b, which)
                np.testing.assert_array_equal(got.cpu().numpy(), want, err_msg=str(kw))
                np.testing.assert_array_equal(valid, ok)
            k1, _ = pa.gather_torch(c.problem, b, "k", dev)
            np.testing.assert_array_equal(k1.cpu().numpy(), k.cpu().numpy())


class TorchMlaReferenceTest(unittest.TestCase):
    def test_hello_without_torch_and_declaration(self):
        mod = load("torch_mla_reference")
        cap = mod.CAPABILITY
        self.assertEqual(cap["kv_layouts"], ["mla_joint", "mla_split"])
        self.assertEqual((cap["head_sizes"], cap["head_sizes_v"]), ([576], [512]))
        self.assertEqual(cap["scale_modes"], ["none", "per_tensor"])
        self.assertEqual(cap["max_gqa"], 128)
        c = small(layout="mla_split", ctx=[5])
        ok, why = mod.supports(c.problem)
        if torch is None:
            self.assertFalse(ok)
            self.assertIn("torch", why)
        else:
            self.assertTrue(ok, why)
        nhd = pa.make_problem(dict(c.problem, kv_layout="nhd"))
        self.assertFalse(mod.supports(nhd)[0])

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_agrees_with_dense_attention(self):
        mod = load("torch_mla_reference")
        for kw in mla_cases() + [dict(layout="mla_split", ctx=[0, 12], q_lens=[2, 3], Hq=8)]:
            c = casegen.make_mla_case(**kw)
            b = casegen.buffers(c)
            mod.run(c.problem, b)
            assert_output(self, c, b, str(kw))

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_unequal_scales_are_refused(self):
        mod = load("torch_mla_reference")
        c = casegen.make_mla_case(layout="mla_joint", ctx=[9], kv_dtype="fp8_e4m3fn",
                                  scale_mode="per_tensor")
        b = casegen.buffers(c)
        b.v_scales[0] *= 2
        with self.assertRaises(pa.NotSupported):
            mod.run(c.problem, b)


# ---- the engine adapters: planned in numpy, called on the recording stubs --------------------
class StubPath(object):
    """tests/stubs first on sys.path, the stub engines freshly imported."""

    def setUp(self):
        sys.path.insert(0, STUBS)
        for m in ("aiter", "aiter.mla", "flashinfer", "flashinfer.mla"):
            sys.modules.pop(m, None)

    def tearDown(self):
        sys.path.remove(STUBS)
        for m in ("aiter", "aiter.mla", "flashinfer", "flashinfer.mla"):
            sys.modules.pop(m, None)


class FlashInferMlaTest(StubPath, unittest.TestCase):
    def setUp(self):
        StubPath.setUp(self)
        self.ad = load("flashinfer_mla")
        import flashinfer.mla
        self.stub = flashinfer.mla

    def called(self, c):
        """(the stub's record of init / plan / run, the buffers after the copy-back)."""
        b = casegen.buffers(c)
        self.ad.call(c.problem, b, self.stub, device=None)
        return self.stub.CALLS[-1], b

    def test_declaration(self):
        cap = self.ad.CAPABILITY
        self.assertEqual(cap["kv_layouts"], ["mla_joint", "mla_split"])
        self.assertEqual(cap["lse_base"], 2)  # FlashInfer's MLA LSE is log2 by default
        self.assertTrue(cap["lse"] and cap["custom_scale"] and cap["strided_pages"])
        self.assertEqual((cap["kv_dtypes"], cap["scale_modes"]), (["bf16", "fp16"], ["none"]))
        self.assertFalse(cap["empty_rows"])
        self.assertEqual(cap["page_tables"], ["padded", "csr"])
        p = small(layout="mla_split", ctx=[5]).problem
        self.assertIn("q dtype", self.ad.why_not(pa.make_problem(dict(p, kv_dtype="fp16"))))
        self.assertIn("MLA", self.ad.why_not(pa.make_problem(dict(p, kv_layout="nhd"))))

    def test_split_caches_plan_and_run_arguments(self):
        c = casegen.make_mla_case(seed=3, layout="mla_split", ctx=[37, 70], q_lens=[1, 3],
                                  Hq=16, B=16, page_pad=16)
        p = c.problem
        call, b = self.called(c)
        NB, ps, ps_v = p.num_blocks, p.page_stride, p.page_stride_v
        init, plan, run = call["init"], call["plan"], call["run"]
        self.assertEqual(init["float_workspace_buffer"]["shape"], (self.ad.WORKSPACE_BYTES,))
        self.assertEqual(init["backend"], "auto")
        np.testing.assert_array_equal(plan["qo_indptr"]["tensor"], [0, 1, 4])
        np.testing.assert_array_equal(plan["kv_indptr"]["tensor"], [0, 3, 8])
        bt = c.arrays["block_tables"]
        np.testing.assert_array_equal(plan["kv_indices"]["tensor"][:8],
                                      np.concatenate([bt[0, :3], bt[1, :5]]))
        np.testing.assert_array_equal(plan["kv_len_arr"]["tensor"], [37, 70])
        self.assertEqual((plan["num_heads"], plan["head_dim_ckv"], plan["head_dim_kpe"],
                          plan["page_size"], plan["causal"]), (16, 512, 64, 16, True))
        self.assertAlmostEqual(plan["sm_scale"], 1 / math.sqrt(192))
        self.assertEqual((plan["q_data_type"], plan["kv_data_type"]), ("bfloat16", "bfloat16"))
        self.assertFalse(plan["use_profiler"])
        # q_nope / q_pe: strided views of the q rows, no copy of their layout.
        self.assertEqual((run["q_nope"]["shape"], run["q_nope"]["stride"]),
                         ((4, 16, 512), (16 * 576, 576, 1)))
        self.assertEqual((run["q_pe"]["shape"], run["q_pe"]["stride"]),
                         ((4, 16, 64), (16 * 576, 576, 1)))
        np.testing.assert_array_equal(run["q_pe"]["tensor"], c.arrays["q"][..., 512:])
        # ckv = the V cache, kpe = the K cache, page strides as given.
        self.assertEqual((run["ckv_cache"]["shape"], run["ckv_cache"]["stride"]),
                         ((NB, 16, 512), (ps_v, 512, 1)))
        self.assertEqual((run["kpe_cache"]["shape"], run["kpe_cache"]["stride"]),
                         ((NB, 16, 64), (ps, 64, 1)))
        blk, slot = int(bt[1, 2]), 5
        np.testing.assert_array_equal(
            run["ckv_cache"]["tensor"][blk, slot].view(np.uint16),
            c.arrays["v_cache"][blk * ps_v + slot * 512:][:512])
        np.testing.assert_array_equal(
            run["kpe_cache"]["tensor"][blk, slot].view(np.uint16),
            c.arrays["k_cache"][blk * ps + slot * 64:][:64])
        self.assertTrue(run["return_lse"])
        self.assertFalse(run["return_lse_base_on_e"])  # left at the default: base 2
        self.assertEqual(run["lse"]["shape"], (4, 16))
        # The copy-back: out = q_nope (the stub's), lse = 2.
        np.testing.assert_array_equal(b.out, c.arrays["q"][..., :512])
        self.assertTrue((b.lse == 2.0).all())

    def test_joint_cache_as_two_views_and_csr(self):
        c = casegen.make_mla_case(seed=4, layout="mla_joint", ctx=[9, 40], L=2, Hq=8, B=4,
                                  page_pad=8, csr=True, want_lse=False)
        p = c.problem
        call, b = self.called(c)
        run, plan = call["run"], call["plan"]
        ps = p.page_stride
        self.assertEqual(run["ckv_cache"]["stride"], (ps, 576, 1))
        self.assertEqual(run["kpe_cache"]["stride"], (ps, 576, 1))
        kc = c.arrays["k_cache"]
        page, slot = int(c.arrays["kv_indices"][4]), 3
        np.testing.assert_array_equal(run["ckv_cache"]["tensor"][page, slot].view(np.uint16),
                                      kc[page * ps + slot * 576:][:512])
        np.testing.assert_array_equal(run["kpe_cache"]["tensor"][page, slot].view(np.uint16),
                                      kc[page * ps + slot * 576 + 512:][:64])
        np.testing.assert_array_equal(plan["kv_indptr"]["tensor"], c.arrays["kv_indptr"])
        np.testing.assert_array_equal(plan["kv_len_arr"]["tensor"], [9, 40])
        np.testing.assert_array_equal(plan["qo_indptr"]["tensor"], [0, 2, 4])
        self.assertEqual(plan["page_size"], 4)
        self.assertFalse(run["return_lse"])
        self.assertIsNone(run["lse"])
        np.testing.assert_array_equal(b.out, c.arrays["q"][..., :512])

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_run_through_the_stub_with_torch(self):
        os.environ["PACHECK_ADAPTER_DEVICE"] = "cpu"
        try:
            c = casegen.make_mla_case(seed=5, layout="mla_split", ctx=[20], Hq=16)
            b = casegen.buffers(c)
            self.ad.run(c.problem, b)
            call = self.stub.CALLS[-1]
            self.assertEqual(call["plan"]["q_data_type"], "bfloat16")
            self.assertEqual(call["run"]["ckv_cache"]["dtype"], "bfloat16")
            np.testing.assert_array_equal(b.out, c.arrays["q"][..., :512])
        finally:
            os.environ.pop("PACHECK_ADAPTER_DEVICE", None)


class AiterMlaTest(StubPath, unittest.TestCase):
    def setUp(self):
        StubPath.setUp(self)
        self.ad = load("aiter_mla_decode")
        import aiter.mla
        self.stub = aiter.mla
        self.kernels = {k["name"]: k for k in self.ad.KERNELS}

    def test_declaration(self):
        self.assertEqual(sorted(self.kernels), ["aiter_mla_decode_fwd",
                                                "aiter_mla_decode_fwd_page1"])
        for k in self.ad.KERNELS:
            cap = k["capability"]
            self.assertEqual(cap["kv_layouts"], ["mla_joint"])
            self.assertEqual((cap["head_sizes"], cap["head_sizes_v"]), ([576], [512]))
            self.assertFalse(cap["lse"])
            self.assertTrue(cap["custom_scale"])
        self.assertEqual(self.kernels["aiter_mla_decode_fwd"]["capability"]["block_sizes"],
                         [1, 64])
        self.assertEqual(self.kernels["aiter_mla_decode_fwd_page1"]["capability"]
                         ["page_stride_align"], 576)
        p = casegen.make_mla_case(layout="mla_joint", ctx=[5], Hq=16).problem
        self.assertIsNone(self.ad.why_not(p, "paged"))
        self.assertIn("[16, 128]", self.ad.why_not(pa.make_problem(dict(p, num_q_heads=32)),
                                                   "paged"))
        self.assertIn("q_len 1", self.ad.why_not(pa.make_problem(dict(p, q_len=2)), "page1"))
        self.assertIn("mla_joint", self.ad.why_not(pa.make_problem(dict(p, kv_layout="mla_split")),
                                                   "paged"))

    def test_paged_form(self):
        c = casegen.make_mla_case(seed=6, layout="mla_joint", ctx=[130, 64], L=2, Hq=128, B=64,
                                  want_lse=False)
        p = c.problem
        b = casegen.buffers(c)
        self.ad.call(p, b, self.stub, "paged", device=None)
        call = self.stub.CALLS[-1]
        NB = p.num_blocks
        self.assertEqual(call["_signature"], "mla_decode_fwd")
        self.assertEqual((call["q"]["shape"], call["q"]["stride"]), ((4, 128, 576),
                                                                   (128 * 576, 576, 1)))
        self.assertEqual((call["kv_buffer"]["shape"], call["kv_buffer"]["stride"]),
                         ((NB, 64, 1, 576), (64 * 576, 576, 576, 1)))
        self.assertEqual(call["o"]["shape"], (4, 128, 512))
        np.testing.assert_array_equal(call["qo_indptr"]["tensor"], [0, 2, 4])
        np.testing.assert_array_equal(call["kv_indptr"]["tensor"], [0, 3, 4])
        bt = c.arrays["block_tables"]
        np.testing.assert_array_equal(call["kv_indices"]["tensor"][:4],
                                      [bt[0, 0], bt[0, 1], bt[0, 2], bt[1, 0]])
        np.testing.assert_array_equal(call["kv_last_page_lens"]["tensor"], [2, 64])
        self.assertEqual((call["max_seqlen_q"], call["page_size"], call["nhead_kv"]), (2, 64, 1))
        self.assertAlmostEqual(call["sm_scale"], 1 / math.sqrt(192))
        self.assertEqual(call["logit_cap"], 0.0)
        self.assertIsNone(call["kv_scale"])
        page, slot = int(bt[0, 1]), 7
        np.testing.assert_array_equal(call["kv_buffer"]["tensor"][page, slot, 0].view(np.uint16),
                                      c.arrays["k_cache"][(page * 64 + slot) * 576:][:576])
        np.testing.assert_array_equal(b.out, c.arrays["q"][..., :512])  # o = q[..., :512]

    def test_page1_form_rows_of_d(self):
        c = casegen.make_mla_case(seed=8, layout="mla_joint", ctx=[20, 5], Hq=16, B=4,
                                  page_pad=576, csr=True, want_lse=False)
        p = c.problem
        ps = p.page_stride
        self.assertEqual(ps, 5 * 576)
        for mod in (self.stub, self.stub.legacy_module()):
            b = casegen.buffers(c)
            self.ad.call(p, b, mod, "page1", device=None)
            call = self.stub.CALLS[-1]
            kv = call["kv_buffer"]
            self.assertEqual(kv["shape"][1:], (1, 1, 576))
            self.assertEqual(kv["shape"][0] * 576, pa.pool_elements(p, "k"))
            np.testing.assert_array_equal(call["kv_indptr"]["tensor"], [0, 20, 25])
            np.testing.assert_array_equal(call["kv_last_page_lens"]["tensor"], [1, 1])
            idx = call["kv_indices"]["tensor"]
            pages = c.arrays["kv_indices"]
            for t in (0, 6, 19):  # token t of sequence 0: row page * (ps / D) + slot
                self.assertEqual(idx[t], pages[t // 4] * 5 + t % 4)
                np.testing.assert_array_equal(kv["tensor"][idx[t], 0, 0].view(np.uint16),
                                              c.arrays["k_cache"][pages[t // 4] * ps
                                                                  + (t % 4) * 576:][:576])
            self.assertEqual(idx[20], pages[5] * 5)  # sequence 1's first token
            if mod is self.stub:
                self.assertEqual(call["page_size"], 1)
            else:
                self.assertNotIn("page_size", call)  # the earlier signature has none
            np.testing.assert_array_equal(b.out, c.arrays["q"][..., :512])

    def test_paged_form_needs_page_size(self):
        c = casegen.make_mla_case(layout="mla_joint", ctx=[20], Hq=16, B=64)
        with self.assertRaises(pa.NotSupported) as e:
            self.ad.call(c.problem, casegen.buffers(c), self.stub.legacy_module(), "paged")
        self.assertIn("page1", str(e.exception))

    @unittest.skipIf(torch is None, "torch is not installed")
    def test_run_through_the_stub_with_torch(self):
        os.environ["PACHECK_ADAPTER_DEVICE"] = "cpu"
        try:
            c = casegen.make_mla_case(seed=9, layout="mla_joint", ctx=[20], Hq=16, B=64)
            for k in self.ad.KERNELS:
                b = casegen.buffers(c)
                k["run"](c.problem, b)
                call = self.stub.CALLS[-1]
                self.assertEqual(call["kv_buffer"]["dtype"], "bfloat16")
                np.testing.assert_array_equal(b.out, c.arrays["q"][..., :512])
        finally:
            os.environ.pop("PACHECK_ADAPTER_DEVICE", None)


if __name__ == "__main__":
    unittest.main()
