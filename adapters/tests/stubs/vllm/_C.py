"""Stub of vllm._C for the adapter tests: paged_attention_v1/v2 as Python functions with the
op signatures the adapter is written against. Each call is recorded by argument name, and the
output is deterministic (out = query), so a test can check what was passed and the copy-back."""
import torch

CALLS = []
_V1 = ("out", "query", "key_cache", "value_cache", "num_kv_heads", "scale", "block_tables",
       "seq_lens", "block_size", "max_seq_len", "alibi_slopes", "kv_cache_dtype", "k_scale",
       "v_scale", "tp_rank", "blocksparse_local_blocks", "blocksparse_vert_stride",
       "blocksparse_block_size", "blocksparse_head_sliding_step")
_V2 = _V1[:1] + ("exp_sums", "max_logits", "tmp_out") + _V1[1:]


def _describe(v):
    if isinstance(v, torch.Tensor):
        return {"shape": tuple(v.shape), "dtype": str(v.dtype).replace("torch.", ""),
                "stride": tuple(v.stride()), "numel": v.numel(), "device": v.device.type,
                "tensor": v}
    return v


def _record(names, version, args):
    if len(args) != len(names):
        raise TypeError("paged_attention_%s takes %d arguments, got %d"
                        % (version, len(names), len(args)))
    call = {n: _describe(a) for n, a in zip(names, args)}
    call["_version"] = version
    CALLS.append(call)
    out, query = args[0], args[names.index("query")]
    out.copy_(query)


def paged_attention_v1(out, query, key_cache, value_cache, num_kv_heads, scale, block_tables,
                       seq_lens, block_size, max_seq_len, alibi_slopes, kv_cache_dtype, k_scale,
                       v_scale, tp_rank, blocksparse_local_blocks, blocksparse_vert_stride,
                       blocksparse_block_size, blocksparse_head_sliding_step):
    _record(_V1, "v1", [out, query, key_cache, value_cache, num_kv_heads, scale, block_tables,
                        seq_lens, block_size, max_seq_len, alibi_slopes, kv_cache_dtype, k_scale,
                        v_scale, tp_rank, blocksparse_local_blocks, blocksparse_vert_stride,
                        blocksparse_block_size, blocksparse_head_sliding_step])


def paged_attention_v2(out, exp_sums, max_logits, tmp_out, query, key_cache, value_cache,
                       num_kv_heads, scale, block_tables, seq_lens, block_size, max_seq_len,
                       alibi_slopes, kv_cache_dtype, k_scale, v_scale, tp_rank,
                       blocksparse_local_blocks, blocksparse_vert_stride, blocksparse_block_size,
                       blocksparse_head_sliding_step):
    _record(_V2, "v2", [out, exp_sums, max_logits, tmp_out, query, key_cache, value_cache,
                        num_kv_heads, scale, block_tables, seq_lens, block_size, max_seq_len,
                        alibi_slopes, kv_cache_dtype, k_scale, v_scale, tp_rank,
                        blocksparse_local_blocks, blocksparse_vert_stride,
                        blocksparse_block_size, blocksparse_head_sliding_step])
