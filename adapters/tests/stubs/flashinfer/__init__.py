"""Stub of the flashinfer package for the adapter tests (only flashinfer.mla)."""
