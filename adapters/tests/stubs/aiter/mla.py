"""Stub of aiter.mla for the adapter tests: mla_decode_fwd with the signature of aiter's newest
revision read (page_size and nhead_kv after max_seqlen_q). Each call is recorded by argument name
(CALLS), and o is written deterministically (o = q's first Dv columns), so a test can check what
was passed and the copy-back. legacy_module() gives an aiter.mla whose mla_decode_fwd has the
earlier signature (no page_size / nhead_kv: page_size from kv_buffer.shape). Not aiter: no
attention is computed. Works on numpy arrays (tests without torch) and torch tensors alike."""
import inspect
import types

CALLS = []


def describe(v):
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        if type(v).__module__.startswith("torch"):
            stride, device = tuple(v.stride()), v.device.type
            dtype = str(v.dtype).replace("torch.", "")
        else:
            stride = tuple(s // v.itemsize for s in v.strides)
            device, dtype = "numpy", str(v.dtype)
        return {"shape": tuple(v.shape), "dtype": dtype, "stride": stride, "device": device,
                "tensor": v}
    return v


def _record(fn, args, kwargs):
    bound = inspect.signature(fn).bind(*args, **kwargs)  # TypeError on a wrong call
    bound.apply_defaults()
    call = {k: describe(v) for k, v in bound.arguments.items()}
    call["_signature"] = fn.__name__
    CALLS.append(call)
    q, o = bound.arguments["q"], bound.arguments["o"]
    o[...] = q[..., :o.shape[-1]]
    return o, None


def mla_decode_fwd(q, kv_buffer, o, qo_indptr, kv_indptr, kv_indices, kv_last_page_lens,
                   max_seqlen_q, page_size=1, nhead_kv=1, sm_scale=None, logit_cap=0.0,
                   num_kv_splits=None, num_kv_splits_indptr=None, work_meta_data=None,
                   work_indptr=None, work_info_set=None, reduce_indptr=None,
                   reduce_final_map=None, reduce_partial_map=None, q_scale=None, kv_scale=None,
                   intra_batch_mode=False, return_logits=False, return_lse=False):
    return _record(mla_decode_fwd, (q, kv_buffer, o, qo_indptr, kv_indptr, kv_indices,
                                    kv_last_page_lens, max_seqlen_q),
                   dict(page_size=page_size, nhead_kv=nhead_kv, sm_scale=sm_scale,
                        logit_cap=logit_cap, num_kv_splits=num_kv_splits,
                        num_kv_splits_indptr=num_kv_splits_indptr, work_meta_data=work_meta_data,
                        work_indptr=work_indptr, work_info_set=work_info_set,
                        reduce_indptr=reduce_indptr, reduce_final_map=reduce_final_map,
                        reduce_partial_map=reduce_partial_map, q_scale=q_scale,
                        kv_scale=kv_scale, intra_batch_mode=intra_batch_mode,
                        return_logits=return_logits, return_lse=return_lse))


def mla_decode_fwd_legacy(q, kv_buffer, o, qo_indptr, kv_indptr, kv_indices, kv_last_page_lens,
                          max_seqlen_q, sm_scale=None, logit_cap=0.0, num_kv_splits=None):
    return _record(mla_decode_fwd_legacy, (q, kv_buffer, o, qo_indptr, kv_indptr, kv_indices,
                                           kv_last_page_lens, max_seqlen_q),
                   dict(sm_scale=sm_scale, logit_cap=logit_cap, num_kv_splits=num_kv_splits))


def legacy_module():
    """An aiter.mla of the earlier signature (its mla_decode_fwd takes no page_size)."""
    m = types.ModuleType("aiter.mla")
    m.mla_decode_fwd = mla_decode_fwd_legacy
    return m
