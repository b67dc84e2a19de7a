"""Stub of the vllm package for the adapter tests (only vllm._C)."""
