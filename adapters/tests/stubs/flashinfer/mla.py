"""Stub of flashinfer.mla for the adapter tests: BatchMLAPagedAttentionWrapper with the
constructor, plan() and run() signatures the adapter is written against. Each call is recorded
by argument name (CALLS: one dict per wrapper, its "init", "plan" and "run"), and run() writes a
deterministic result (out = q_nope; lse = 2.0), so a test can check what was passed and the
copy-back. Not FlashInfer: no attention is computed. Works on numpy arrays (tests without torch)
and on torch tensors alike."""
import inspect

CALLS = []


def describe(v):
    """What a test checks about one argument: an array's shape, dtype, strides in elements and
    device, with the array itself; or the value."""
    if hasattr(v, "shape") and hasattr(v, "dtype"):
        if type(v).__module__.startswith("torch"):
            stride, device = tuple(v.stride()), v.device.type
            dtype = str(v.dtype).replace("torch.", "")
        else:
            stride = tuple(s // v.itemsize for s in v.strides)
            device, dtype = "numpy", str(v.dtype)
        return {"shape": tuple(v.shape), "dtype": dtype, "stride": stride, "device": device,
                "tensor": v}
    if type(v).__module__.startswith("torch"):  # a torch.dtype
        return str(v).replace("torch.", "")
    return v


def _record(fn, args, kwargs):
    bound = inspect.signature(fn).bind(*args, **kwargs)  # TypeError on a wrong call
    bound.apply_defaults()
    return {k: describe(v) for k, v in bound.arguments.items() if k != "self"}


class BatchMLAPagedAttentionWrapper(object):
    def __init__(self, float_workspace_buffer, use_cuda_graph=False, qo_indptr=None,
                 kv_indptr=None, kv_indices=None, kv_len_arr=None, backend="auto"):
        self.calls = {"init": _record(BatchMLAPagedAttentionWrapper.__init__,
                                      (self, float_workspace_buffer, use_cuda_graph, qo_indptr,
                                       kv_indptr, kv_indices, kv_len_arr, backend), {})}
        CALLS.append(self.calls)

    def plan(self, qo_indptr, kv_indptr, kv_indices, kv_len_arr, num_heads, head_dim_ckv,
             head_dim_kpe, page_size, causal, sm_scale, q_data_type, kv_data_type,
             use_profiler=False):
        self.calls["plan"] = _record(BatchMLAPagedAttentionWrapper.plan,
                                     (self, qo_indptr, kv_indptr, kv_indices, kv_len_arr,
                                      num_heads, head_dim_ckv, head_dim_kpe, page_size, causal,
                                      sm_scale, q_data_type, kv_data_type, use_profiler), {})

    def run(self, q_nope, q_pe, ckv_cache, kpe_cache, out=None, lse=None, return_lse=False,
            profiler_buffer=None, kv_len=None, page_table=None, return_lse_base_on_e=False):
        if "plan" not in self.calls:
            raise RuntimeError("run() before plan()")
        self.calls["run"] = _record(BatchMLAPagedAttentionWrapper.run,
                                    (self, q_nope, q_pe, ckv_cache, kpe_cache, out, lse,
                                     return_lse, profiler_buffer, kv_len, page_table,
                                     return_lse_base_on_e), {})
        if out is None or tuple(out.shape) != tuple(q_nope.shape):
            raise ValueError("out must be given with q_nope's shape")
        out[...] = q_nope
        if return_lse:
            lse[...] = 2.0
            return out, lse
        return out
