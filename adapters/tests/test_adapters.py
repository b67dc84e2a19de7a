"""Tests of the Python adapter side: codecs and layout helpers, numpy_reference against an
independent dense computation, the engine adapters' calls (planned in numpy; with torch, through
stub engines), the torch adapters where torch is installed, and the worker protocol.

    /usr/bin/python3 -m unittest discover -s adapters/tests -v
"""
import importlib
import itertools
import math
import os
import sys
import unittest

import numpy as np

import casegen
from casegen import ADAPTERS, HERE

import pacheck_adapter as pa

STUBS = os.path.join(HERE, "stubs")

try:
    import torch
except ImportError:
    torch = None


def load(name, **env):
    """(Re)imports an adapter module with the environment variables given."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        sys.modules.pop(name, None)
        return importlib.import_module(name)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def assert_output(tc, case, b, what=""):
    """Elementwise: the output is the dense result rounded to the q dtype (half an ulp), and the
    LSE agrees to fp32."""
    p = case.problem
    exp_o, exp_l = casegen.dense_attention(case)
    got = pa.decode(b.out, p.q_dtype).astype(np.float64)
    u = {"bf16": 2.0 ** -8, "fp16": 2.0 ** -11}[p.q_dtype]
    sub = {"bf16": 2.0 ** -133, "fp16": 2.0 ** -25}[p.q_dtype]  # half the subnormal spacing
    bad = ~(np.abs(got - exp_o) <= 1.01 * (u * np.abs(exp_o) + sub))
    tc.assertFalse(bad.any(), "%s: %d of %d elements off, first at %s: %r vs %r" % (
        what, bad.sum(), bad.size, np.argwhere(bad)[:1].tolist(),
        got[bad][:1], exp_o[bad][:1]))
    if b.lse is not None:
        np.testing.assert_allclose(b.lse, exp_l, rtol=1e-6, atol=1e-6, err_msg=what)


def problems():
    """A deterministic spread over the per-head layouts, KV dtypes, scale modes and options (the
    MLA layouts: test_mla.py)."""
    out = []
    kvs = ["bf16", "fp16", "fp8_e4m3fn", "fp8_e4m3fnuz", "int8"]
    for i, (layout, kv, sm) in enumerate(itertools.product(pa.HEAD_LAYOUTS, kvs, pa.SCALE_MODES)):
        if kv == "int8" and sm == "none":
            continue  # pacheck never asks for int8 without scales
        B = 32 if layout == "shuffled" else [1, 4, 16, 32][i % 4]
        out.append(dict(seed=i, layout=layout, kv_dtype=kv, scale_mode=sm, B=B, L=1 + i % 3,
                        window=5 if i % 4 == 1 else 0, softcap=10.0 if i % 5 == 2 else 0.0,
                        alibi=i % 3 == 0, sinks=i % 2 == 0, page_pad=24 if i % 2 else 0,
                        q_dtype=("bf16", "fp16")[i % 2], Hq=[4, 8, 2][i % 3],
                        softmax_scale=0.07 if i % 6 == 3 else None))
    return out


class DeclarationTest(unittest.TestCase):
    def test_abi_1_1_capability_keys_default_to_the_1_0_behaviour(self):
        cap = pa.capability(q_dtypes=["bf16"], kv_dtypes=["bf16"], kv_layouts=["nhd"], scale_modes=["none"],
                            head_sizes=[64], block_sizes=[16])
        self.assertEqual((cap["scales_for_8bit_only"], cap["fixed_partition"], cap["page_stride_align"]),
                         (False, 0, 1))
        self.assertEqual(pa.capability(max_gqa=None)["max_gqa"], 0)  # no limit
        cap = pa.capability(fixed_partition=512, page_stride_align=16, scales_for_8bit_only=True)
        self.assertEqual((cap["fixed_partition"], cap["page_stride_align"]), (512, 16))

    def test_numerics_per_kv_dtype(self):
        n = pa.numerics(p_round="as_q", pv_round="as_q",
                        by_kv=[(["fp8_e4m3fn", "fp8_e5m2"], pa.numerics(qk_round="as_q", v_round="as_q"))])
        self.assertEqual(n["pv_round"], "as_q")
        self.assertEqual(n["by_kv"][0]["kv_dtypes"], ["fp8_e4m3fn", "fp8_e5m2"])
        self.assertEqual(n["by_kv"][0]["v_round"], "as_q")
        with self.assertRaises(ValueError):
            pa.numerics(by_kv=[(["fp9"], pa.numerics())])
        with self.assertRaises(ValueError):
            pa.numerics(v_round="fp7")


class CodecTest(unittest.TestCase):
    def test_fp8_tables_from_bit_fields(self):
        fn, fnuz, e5 = (pa.decode_table(n) for n in ("fp8_e4m3fn", "fp8_e4m3fnuz", "fp8_e5m2"))
        self.assertEqual((fn[0x7E], fn[0x38], fn[0x01], fn[0xB8]), (448.0, 1.0, 2.0 ** -9, -1.0))
        self.assertTrue(np.isnan(fn[0x7F]) and np.isnan(fn[0xFF]))
        self.assertEqual(int(np.isnan(fn).sum()), 2)
        self.assertEqual((fnuz[0x7F], fnuz[0x40], fnuz[0x01]), (240.0, 1.0, 2.0 ** -10))
        self.assertTrue(np.isnan(fnuz[0x80]))
        self.assertEqual(int(np.isnan(fnuz).sum()), 1)
        # The same byte in the two e4m3 flavours: a factor of 2 apart.
        self.assertEqual(fn[0x50], 2 * fnuz[0x50])
        self.assertEqual((e5[0x7B], e5[0x3C], e5[0x7C]), (57344.0, 1.0, np.inf))
        self.assertTrue(np.isnan(e5[0x7D]))
        i8 = pa.decode_table("int8")
        self.assertEqual((i8[0x7F], i8[0xFF], i8[0x80]), (127.0, -1.0, -128.0))

    def test_8bit_encode_round_trips_and_saturates(self):
        for name in ("fp8_e4m3fn", "fp8_e4m3fnuz", "fp8_e5m2", "int8"):
            t = pa.decode_table(name)
            codes = np.array([c for c in range(256) if np.isfinite(t[c])
                              and not (name == "int8" and c == 0x80)], dtype=np.uint8)
            np.testing.assert_array_equal(pa.encode(t[codes], name), codes, err_msg=name)
        self.assertEqual(int(pa.encode([1e9], "fp8_e4m3fn")[0]), 0x7E)
        self.assertEqual(int(pa.encode([-1e9], "fp8_e4m3fnuz")[0]), 0xFF)
        self.assertEqual(int(pa.encode([300.0], "int8")[0]), 127)
        # Ties go to the even code: 1 + 1/16 lies halfway between 1 (0x38) and 1.125 (0x39).
        self.assertEqual(int(pa.encode([1.0625], "fp8_e4m3fn")[0]), 0x38)
        self.assertEqual(int(pa.encode([-0.0], "fp8_e4m3fnuz")[0]), 0)  # fnuz has no -0

    def test_16bit_round_to_nearest_even(self):
        one = 1.0
        ulp = 2.0 ** -7
        self.assertEqual(int(pa.encode([one + ulp / 2], "bf16")[0]), 0x3F80)  # tie -> even
        self.assertEqual(int(pa.encode([one + 1.5 * ulp], "bf16")[0]), 0x3F82)  # tie -> even
        self.assertEqual(int(pa.encode([one + 0.6 * ulp], "bf16")[0]), 0x3F81)
        self.assertTrue(np.isnan(pa.decode(pa.encode([np.nan], "bf16"), "bf16")[0]))
        self.assertEqual(int(pa.encode([65520.0], "fp16")[0]), 0x7C00)  # overflow: Inf
        c = np.arange(0, 0x7C00, 7, dtype=np.uint16)
        np.testing.assert_array_equal(pa.encode(pa.decode(c, "fp16"), "fp16"), c)
        np.testing.assert_array_equal(pa.encode(pa.decode(c, "bf16"), "bf16"), c)


class LayoutTest(unittest.TestCase):
    def test_offsets_match_the_stride_form_and_fill_each_page_once(self):
        rng = np.random.default_rng(5)
        for layout, which, kv in itertools.product(pa.HEAD_LAYOUTS, "kv", ("bf16", "fp8_e4m3fn")):
            x = 16 // pa.DTYPE_BYTES[kv]
            H, B, D = int(rng.integers(1, 4)), 2 * x, 2 * x
            ps = H * B * D + 8
            p = pa.make_problem(dict(num_kv_heads=H, block_size=B, head_size=D, page_stride=ps,
                                     kv_dtype=kv, kv_layout=layout))
            blk, h, tok, d = np.meshgrid([0, 3, 70000], np.arange(H), np.arange(B), np.arange(D),
                                         indexing="ij")
            got = pa.kv_offsets(p, which, blk, h, tok, d)
            want = casegen.offset(layout, which, H, B, D, x, ps, blk, h, tok, d)
            np.testing.assert_array_equal(got, want, err_msg="%s %s %s" % (layout, which, kv))
            page = got[1] - 3 * ps  # one page: a permutation of [0, H*B*D)
            np.testing.assert_array_equal(np.sort(page.reshape(-1)), np.arange(H * B * D))

    def test_shuffled_and_vllm_v_coincide_only_when_block_equals_x(self):
        def v_off(layout, kv, B):
            p = pa.make_problem(dict(num_kv_heads=1, block_size=B, head_size=32,
                                     page_stride=32 * B, kv_dtype=kv, kv_layout=layout))
            tok, d = np.meshgrid(np.arange(B), np.arange(32), indexing="ij")
            return pa.kv_offsets(p, "v", 0, 0, tok, d)
        self.assertTrue((v_off("vllm", "fp8_e4m3fn", 16) == v_off("shuffled", "fp8_e4m3fn",
                                                                   16)).all())
        self.assertFalse((v_off("vllm", "bf16", 16) == v_off("shuffled", "bf16", 16)).all())

    def test_per_token_scales_follow_the_physical_slot(self):
        p = pa.make_problem(dict(num_kv_heads=2, block_size=4, num_blocks=10,
                                 scale_mode="per_token_head_major"))
        self.assertEqual(int(pa.scale_index(p, 7, 1, 3)), 1 * 40 + 7 * 4 + 3)
        p["scale_mode"] = "per_token_block_major"
        self.assertEqual(int(pa.scale_index(p, 7, 1, 3)), (7 * 2 + 1) * 4 + 3)


class NumpyReferenceTest(unittest.TestCase):
    def test_agrees_with_dense_attention_for_every_layout_dtype_and_scale_mode(self):
        ref = load("numpy_reference", PACHECK_PLANT_BUG="")
        self.assertIsNone(ref.PLANT_BUG)
        for kw in problems():
            c = casegen.make_case(**kw)
            b = casegen.buffers(c)
            ref.run(c.problem, b)
            assert_output(self, c, b, str(kw))

    def test_planted_bugs_show_on_one_sequence(self):
        cases = {
            "scale": dict(layout="hnd", scale_mode="per_token_head_major", kv_dtype="fp8_e4m3fn"),
            "v_layout": dict(layout="vllm", kv_dtype="bf16"),
            "causal": dict(layout="nhd", L=3),
        }
        for bug, kw in cases.items():
            c = casegen.make_case(seed=3, S=1, ctx=[40], **kw)
            buggy = load("numpy_reference", PACHECK_PLANT_BUG="1" if bug == "scale" else bug)
            self.assertEqual(buggy.PLANT_BUG, bug)
            self.assertIn("PLANTED BUG", buggy.PROVENANCE)
            b = casegen.buffers(c)
            buggy.run(c.problem, b)
            with self.assertRaises(AssertionError, msg=bug):
                assert_output(self, c, b, bug)
        load("numpy_reference", PACHECK_PLANT_BUG="")


# ---- the engine adapters ----------------------------------------------------------------------
def aiter_case(**kw):
    args = dict(seed=11, S=3, Hq=8, Hkv=2, D=128, B=16, layout="shuffled", kv_dtype="bf16",
                ctx=[600, 17, 300], want_lse=False)
    args.update(kw)
    return casegen.make_case(**args)


class AiterPlanTest(unittest.TestCase):
    def setUp(self):
        self.ad = load("aiter_paged_attention_common")

    def plan(self, case, fp8="fp8_e4m3fnuz", cus=304):
        return self.ad.plan(case.problem, casegen.buffers(case), cus=cus, fp8=fp8)

    def test_tensors_workspace_and_scalars_follow_the_signature(self):
        c = aiter_case()
        p, kw = c.problem, self.plan(c)
        NB, MB = p.num_blocks, p.max_blocks_per_seq
        self.assertEqual((kw["Q"].shape, kw["Q"].dtype), ((3, 8, 128), "bfloat16"))
        self.assertEqual(kw["K"].shape, (NB, 2, 128 // 8, 16, 8))
        self.assertEqual(kw["V"].shape, (NB, 2, 16 // 8, 128, 8))
        parts = math.ceil(600 / 256)
        self.assertEqual(parts, 3)
        for n in ("exp_sums", "max_logits"):
            self.assertEqual((kw[n].shape, kw[n].dtype), ((3, 8, parts), "float32"))
        self.assertEqual((kw["tmp_out"].shape, kw["tmp_out"].dtype), ((3, 8, parts, 128),
                                                                      "bfloat16"))
        self.assertEqual((kw["out_"].shape, kw["out_"].dtype), ((3, 8, 128), "bfloat16"))
        self.assertEqual(kw["block_tables"].shape, (3, MB))
        np.testing.assert_array_equal(kw["block_tables"].numpy(), c.arrays["block_tables"])
        np.testing.assert_array_equal(kw["context_lens"].numpy(), [600, 17, 300])
        self.assertEqual(kw["block_tables_stride0"], MB)
        self.assertEqual(kw["scale"], p.softmax_scale)
        self.assertEqual((kw["max_qlen"], kw["max_seq_len"]), (1, 600))
        self.assertEqual(kw["kv_cache_dtype"], "auto")
        self.assertEqual(kw["kv_cache_tensor_dtype"].name, "bfloat16")
        self.assertIsNone(kw["K_QScale_asm"])  # 16-bit KV: the asm scales are not given
        np.testing.assert_array_equal(kw["K_QScale_hip"].numpy(), [1.0])
        # The K and V tensors are the cache itself, read through the header's formulas.
        bk, bv = kw["K"].numpy(), kw["V"].numpy()
        blk, h, tok, d = 5, 1, 13, 77
        self.assertEqual(bk[blk, h, d // 8, tok, d % 8],
                         c.arrays["k_cache"][pa.kv_offsets(p, "k", blk, h, tok, d)])
        self.assertEqual(bv[blk, h, tok // 8, d, tok % 8],
                         c.arrays["v_cache"][pa.kv_offsets(p, "v", blk, h, tok, d)])

    def test_fp8_per_tensor_scales_in_both_forms(self):
        c = aiter_case(kv_dtype="fp8_e4m3fnuz", scale_mode="per_tensor")
        p, kw = c.problem, self.plan(c)
        self.assertEqual(kw["kv_cache_dtype"], "fp8")  # "auto" would read garbage on HIP
        self.assertEqual(kw["K"].dtype, "float8_e4m3fnuz")
        self.assertEqual(kw["K"].shape, (p.num_blocks, 2, 128 // 16, 16, 16))
        for w in "KV":
            hip, asm = kw[w + "_QScale_hip"], kw[w + "_QScale_asm"]
            s = c.arrays[w.lower() + "_scales"][0]
            self.assertEqual((hip.shape, hip.dtype), ((1,), "float32"))
            self.assertEqual(float(hip.numpy()[0]), float(s))
            self.assertEqual((asm.shape, asm.dtype), ((p.num_blocks, 2, 16), "float32"))
            self.assertTrue((asm.numpy() == s).all())  # materialised per-tensor scale

    def test_fp8_per_token_scales_in_both_forms(self):
        c = aiter_case(kv_dtype="fp8_e4m3fnuz", scale_mode="per_token_block_major")
        p, kw = c.problem, self.plan(c)
        n = p.num_blocks * 2 * 16
        for w in "KV":
            hip, asm = kw[w + "_QScale_hip"], kw[w + "_QScale_asm"]
            self.assertEqual(int(np.prod(hip.shape)), n)
            self.assertEqual(asm.shape, (p.num_blocks, 2, 16))
            np.testing.assert_array_equal(asm.numpy().reshape(-1),
                                          c.arrays[w.lower() + "_scales"])

    def test_routing_and_refusals(self):
        c = aiter_case()
        ad, p = self.ad, c.problem
        self.assertEqual(ad.branch(p, cus=304), "hip")  # 3 * 8 <= 608
        big = pa.make_problem(dict(p, num_seqs=80))
        self.assertEqual(ad.branch(big, cus=304), "asm")  # 640 > 608
        self.assertEqual(ad.branch(big, cus=304, high_precision=2), "asm")
        self.assertEqual(ad.branch(pa.make_problem(dict(big, head_size=64)), cus=304), "hip")
        self.assertEqual(ad.branch(pa.make_problem(dict(p, kv_dtype="int8")), cus=304), "asm")
        fn = aiter_case(kv_dtype="fp8_e4m3fn", scale_mode="per_tensor").problem
        why = ad.why_not(fn, cus=304, fp8="fp8_e4m3fnuz")
        self.assertIn("fp8_e4m3fn", why)
        self.assertIn("fp8_e4m3fnuz", why)
        self.assertIn("q dtype", ad.why_not(pa.make_problem(dict(p, q_dtype="fp16")), 304))
        self.assertIn("block 16", ad.why_not(pa.make_problem(dict(big, block_size=32, page_stride=2 * 32 * 128)), 304))
        self.assertIsNone(ad.why_not(pa.make_problem(dict(p, block_size=32,
                                                          page_stride=2 * 32 * 128)), 304))
        self.assertFalse(ad.CAPABILITY["custom_scale"])  # asm ignores scale


def vllm_case(**kw):
    args = dict(seed=12, S=2, Hq=8, Hkv=2, D=64, B=16, layout="vllm", kv_dtype="bf16",
                ctx=[1100, 40], want_lse=False, page_pad=40)
    args.update(kw)
    return casegen.make_case(**args)


class VllmPlanTest(unittest.TestCase):
    def setUp(self):
        self.ad = load("vllm_paged_attention")

    def plan(self, case, version, fp8="fp8_e4m3fn"):
        return dict(self.ad.plan(case.problem, casegen.buffers(case), version, fp8=fp8))

    def test_strided_caches_rows_and_scalars(self):
        c = vllm_case(L=2, alibi=True)
        p = c.problem
        NB, ps = p.num_blocks, p.page_stride
        self.assertGreater(ps, p.dense_page)
        a = self.plan(c, "v1")
        self.assertEqual(a["key_cache"].shape, (NB, 2, 64 // 8, 16, 8))
        self.assertEqual(a["key_cache"].strides, (ps, 64 * 16, 16 * 8, 8, 1))
        self.assertEqual(a["value_cache"].shape, (NB, 2, 64, 16))
        self.assertEqual(a["value_cache"].strides, (ps, 64 * 16, 16, 1))
        kc, vc = a["key_cache"].numpy(), a["value_cache"].numpy()
        for blk, h, tok, d in [(0, 0, 0, 0), (NB - 1, 1, 15, 63), (7, 1, 9, 21)]:
            self.assertEqual(kc[blk, h, d // 8, tok, d % 8],
                             c.arrays["k_cache"][pa.kv_offsets(p, "k", blk, h, tok, d)])
            self.assertEqual(vc[blk, h, d, tok],
                             c.arrays["v_cache"][pa.kv_offsets(p, "v", blk, h, tok, d)])
        # One row per query token, causal through seq_lens, same block-table row.
        np.testing.assert_array_equal(a["seq_lens"].numpy(), [1099, 1100, 39, 40])
        bt = c.arrays["block_tables"]
        np.testing.assert_array_equal(a["block_tables"].numpy(), bt[[0, 0, 1, 1]])
        self.assertEqual((a["query"].shape, a["out"].shape), ((4, 8, 64), (4, 8, 64)))
        self.assertEqual((a["num_kv_heads"], a["block_size"], a["max_seq_len"]), (2, 16, 1100))
        self.assertEqual(a["scale"], p.softmax_scale)
        np.testing.assert_array_equal(a["alibi_slopes"].numpy(), c.arrays["alibi_slopes"])
        self.assertEqual(a["kv_cache_dtype"], "auto")
        self.assertEqual((a["k_scale"].shape, float(a["k_scale"].numpy()[0])), ((1,), 1.0))
        self.assertNotIn("exp_sums", a)

    def test_v2_workspace_has_512_token_partitions(self):
        c = vllm_case()
        a = self.plan(c, "v2")
        parts = math.ceil(1100 / 512)
        self.assertEqual(parts, 3)
        self.assertEqual((a["exp_sums"].shape, a["exp_sums"].dtype), ((2, 8, parts), "float32"))
        self.assertEqual(a["max_logits"].shape, (2, 8, parts))
        self.assertEqual((a["tmp_out"].shape, a["tmp_out"].dtype), ((2, 8, parts, 64),
                                                                    "bfloat16"))
        names = [n for n, _ in self.ad.plan(c.problem, casegen.buffers(c), "v2")]
        self.assertEqual(names[:5], ["out", "exp_sums", "max_logits", "tmp_out", "query"])

    def test_fp8_per_tensor(self):
        c = vllm_case(kv_dtype="fp8_e4m3fn", scale_mode="per_tensor")
        a = self.plan(c, "v1")
        self.assertEqual((a["kv_cache_dtype"], a["key_cache"].dtype), ("fp8", "uint8"))
        self.assertEqual(a["key_cache"].shape[2:], (64 // 16, 16, 16))
        self.assertEqual(float(a["k_scale"].numpy()[0]), float(c.arrays["k_scales"][0]))
        self.assertEqual(float(a["v_scale"].numpy()[0]), float(c.arrays["v_scales"][0]))
        self.assertIn("fp8_e4m3fnuz",
                      self.ad.why_not(c.problem, fp8="fp8_e4m3fnuz"))

    def test_two_kernels(self):
        names = [k["name"] for k in self.ad.KERNELS]
        self.assertEqual(names, ["vllm_paged_attention_v1", "vllm_paged_attention_v2"])
        self.assertEqual(self.ad.KERNELS[0]["capability"]["max_context"], 8192)


@unittest.skipIf(torch is None, "torch is not installed")
class EngineStubTest(unittest.TestCase):
    """The adapters' run() with the stub engines: what reaches the engine, and the copy-back."""

    def setUp(self):
        self.env = {k: os.environ.get(k) for k in ("PACHECK_ADAPTER_DEVICE",
                                                   "PACHECK_NATIVE_FP8", "PACHECK_AITER_CUS")}
        os.environ.update(PACHECK_ADAPTER_DEVICE="cpu", PACHECK_NATIVE_FP8="fp8_e4m3fnuz",
                          PACHECK_AITER_CUS="304")
        sys.path.insert(0, STUBS)
        for m in ("aiter", "vllm", "vllm._C"):
            sys.modules.pop(m, None)

    def tearDown(self):
        sys.path.remove(STUBS)
        for k, v in self.env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def test_aiter_call(self):
        import aiter
        ad = load("aiter_paged_attention_common")
        c = aiter_case(kv_dtype="fp8_e4m3fnuz", scale_mode="per_token_block_major")
        b = casegen.buffers(c)
        ad.run(c.problem, b)
        call, NB = aiter.CALLS[-1], c.problem.num_blocks
        self.assertEqual((call["K"]["shape"], call["K"]["dtype"]),
                         ((NB, 2, 8, 16, 16), "float8_e4m3fnuz"))
        self.assertEqual((call["V"]["shape"], call["V"]["dtype"]),
                         ((NB, 2, 1, 128, 16), "float8_e4m3fnuz"))
        self.assertTrue(call["K"]["contiguous"])
        self.assertEqual(call["exp_sums"]["shape"], (3, 8, 3))
        self.assertEqual((call["tmp_out"]["shape"], call["tmp_out"]["dtype"]),
                         ((3, 8, 3, 128), "bfloat16"))
        for w in "KV":
            asm = call[w + "_QScale_asm"]
            self.assertEqual((asm["shape"], asm["dtype"]), ((NB, 2, 16), "float32"))
            self.assertTrue(asm["contiguous"])
            self.assertEqual(call[w + "_QScale_hip"]["numel"], NB * 2 * 16)
        self.assertEqual((call["kv_cache_dtype"], call["kv_cache_tensor_dtype"]),
                         ("fp8", "float8_e4m3fnuz"))
        self.assertAlmostEqual(call["scale"], c.problem.softmax_scale)
        np.testing.assert_array_equal(call["block_tables"]["tensor"].numpy(),
                                      c.arrays["block_tables"])
        np.testing.assert_array_equal(b.out, c.arrays["q"])  # the stub wrote out_ = Q

    def test_vllm_calls(self):
        import vllm._C as stub
        ad = load("vllm_paged_attention")
        for k in ad.KERNELS:
            c = vllm_case(L=2)
            b = casegen.buffers(c)
            k["run"](c.problem, b)
            call = stub.CALLS[-1]
            self.assertEqual(call["_version"], k["name"][-2:])
            kc = call["key_cache"]
            self.assertEqual(kc["stride"][0], c.problem.page_stride)  # strided, as given
            self.assertEqual(kc["dtype"], "bfloat16")
            self.assertEqual(call["seq_lens"]["tensor"].tolist(), [1099, 1100, 39, 40])
            self.assertEqual(call["k_scale"]["numel"], 1)
            self.assertEqual(call["blocksparse_block_size"], 64)
            np.testing.assert_array_equal(b.out, c.arrays["q"])
        self.assertEqual(stub.CALLS[-1]["tmp_out"]["shape"], (4, 8, 3, 64))


def as_device_buffers(b, dev):
    """The buffers as a MEMORY = "device" kernel gets them from pacheck (pacheck_device.py):
    torch tensors on `dev`, the host views' shapes, 16-bit codes as int16."""
    views = {}
    for n in pa.Buffers.NAMES:
        a = getattr(b, n)
        if a is not None:
            a = np.ascontiguousarray(a)
            a = torch.from_numpy((a.view(np.int16) if a.dtype == np.uint16 else a).copy()).to(dev)
        views[n] = a
    return pa.Buffers(**views)


def host_codes(t, like):
    """A device buffer's bits back as the numpy dtype of `like`."""
    return t.cpu().numpy().view(like.dtype).reshape(like.shape)


@unittest.skipIf(torch is None, "torch is not installed")
class DeviceBufferTest(unittest.TestCase):
    """Every adapter declaring MEMORY = "device" writes the same bits on device tensors as on
    host views (the fallback), for the engine adapters through their stubs."""

    def same_bits(self, run, c):
        host_b = casegen.buffers(c)
        run(c.problem, host_b)
        dev_b = as_device_buffers(casegen.buffers(c), pa.default_device())
        run(c.problem, dev_b)
        np.testing.assert_array_equal(host_codes(dev_b.out, host_b.out), host_b.out)
        if host_b.lse is not None:
            np.testing.assert_array_equal(host_codes(dev_b.lse, host_b.lse), host_b.lse)

    def test_torch_sdpa(self):
        mod = load("torch_sdpa")
        self.assertEqual(mod.MEMORY, "device")
        for kw in [kw for kw in problems() if not kw["softcap"]][::4]:
            self.same_bits(mod.run, casegen.make_case(**kw))

    def test_engine_adapters_through_their_stubs(self):
        saved = {k: os.environ.get(k) for k in ("PACHECK_ADAPTER_DEVICE", "PACHECK_NATIVE_FP8",
                                                "PACHECK_AITER_CUS")}
        os.environ.update(PACHECK_NATIVE_FP8="fp8_e4m3fnuz", PACHECK_AITER_CUS="304")
        sys.path.insert(0, STUBS)
        for m in ("aiter", "vllm", "vllm._C"):
            sys.modules.pop(m, None)
        try:
            ad = load("aiter_paged_attention_common")
            self.assertEqual(ad.MEMORY, "device")
            for sm in ("per_token_block_major", "per_tensor"):
                self.same_bits(ad.run, aiter_case(kv_dtype="fp8_e4m3fnuz", scale_mode=sm))
            vl = load("vllm_paged_attention")
            for k in vl.KERNELS:
                self.assertEqual(k["memory"], "device")
                self.same_bits(k["run"], vllm_case(L=2))
        finally:
            sys.path.remove(STUBS)
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


# ---- the torch adapters ------------------------------------------------------------------------
def _has_flex():
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
        return True
    except ImportError:
        return False


@unittest.skipIf(torch is None, "torch is not installed")
class TorchAdapterTest(unittest.TestCase):
    def check(self, mod, cases):
        for kw in cases:
            c = casegen.make_case(**kw)
            b = casegen.buffers(c)
            mod.run(c.problem, b)
            o, l = casegen.dense_attention(c)
            got = pa.decode(b.out, c.problem.q_dtype)
            tol = 2e-2 * max(1.0, np.abs(o).max())
            self.assertLess(np.abs(got - o).max(), tol, "%s %s" % (mod.NAME, kw))
            np.testing.assert_allclose(b.lse, l, rtol=1e-2, atol=1e-2,
                                       err_msg="%s %s" % (mod.NAME, kw))

    def test_device_gather_is_the_host_gather(self):
        # gather_kv_torch (the pool copied once, gathered on the device through the same offset
        # formula) gives the bits of gather_kv for every layout, KV dtype and scale mode.
        dev = pa.default_device()
        for kw in problems():
            c = casegen.make_case(**kw)
            b = casegen.buffers(c)
            k, v, valid = pa.gather_kv_torch(c.problem, b, dev)
            for which, got in (("k", k), ("v", v)):
                want, want_valid = pa.gather_kv(c.problem, b, which)
                np.testing.assert_array_equal(got.cpu().numpy(), want, err_msg="%s %s" % (which, kw))
                np.testing.assert_array_equal(valid, want_valid)

    @unittest.skipUnless(torch is not None and hasattr(torch.nn.functional,
                                                       "scaled_dot_product_attention"),
                         "no scaled_dot_product_attention")
    def test_sdpa(self):
        mod = load("torch_sdpa")
        self.check(mod, [kw for kw in problems() if not kw["softcap"]][::3])

    @unittest.skipUnless(torch is not None and _has_flex(), "no FlexAttention")
    def test_flex(self):
        mod = load("torch_flex_paged")
        cases = [dict(kw, sinks=False) for kw in problems() if kw["Hq"] // 2 <= 16][::5]
        self.check(mod, [kw for kw in cases if kw["B"] > 0])


if __name__ == "__main__":
    unittest.main()
