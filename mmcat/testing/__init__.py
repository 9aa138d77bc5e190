"""Helpers for tests and benchmarks (not imported by ``import mmcat``)."""
