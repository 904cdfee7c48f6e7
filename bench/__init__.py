"""Benchmarks, runnable as ``python -m bench.<name>``; each prints its figures."""
