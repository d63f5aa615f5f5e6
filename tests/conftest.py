import os

# Tests run on the CPU; the multi-device tests spawn their own processes with 8 virtual devices.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
