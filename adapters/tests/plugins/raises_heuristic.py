"""raises_heuristic: an adapter whose run raises on every case, as aiter does when its kernel
table has no entry for a shape. pacheck must record each case as an error carrying this text and
keep serving the run (the worker stays up; nothing crashes)."""
import pacheck_adapter as pa

NAME = "raises_heuristic"
VERSION = "1"
PROVENANCE = "pacheck adapters/tests/plugins/raises_heuristic.py (test plug-in)"
MEMORY = "host"
CAPABILITY = pa.capability(q_dtypes=["bf16"], kv_dtypes=["bf16"], kv_layouts=["nhd"],
                           scale_modes=["none"], head_sizes=[64], block_sizes=[16], max_gqa=8,
                           max_q_len=1)
NUMERICS = pa.numerics()


def run(problem, buffers):
    raise RuntimeError("get_heuristic_kernel: cannot get heuristic kernel! q_type:bf16 "
                       "kv_type:bf16 gqa:4 block_size:32")
