"""Benchmarks of maskgit_jax next to the PyTorch course code; ``python -m bench.run --help``."""
