import os

# Tests run on the CPU; the multi-device tests spawn their own processes with 8 virtual devices.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# No persistent compilation cache in the user's folder from the tests (tests/test_compile_cache.py
# turns it on in a folder of its own).
os.environ.setdefault("MASKGIT_JAX_COMPILE_CACHE", "0")
