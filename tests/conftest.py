import os
import tempfile

# Tests run on the CPU; the multi-device tests spawn their own processes with 8 virtual devices.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for a whole test run, never the user's folder: both xdist workers
# and every command line a test starts (they inherit the variable) read the programs another process
# compiled. The tiny models' train steps, samplers and exporters are the same programs in many
# tests, and compiling them is most of those tests' time. tests/test_compile_cache.py sets its own.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
os.environ.setdefault("MASKGIT_JAX_COMPILE_CACHE",
                      os.path.join(tempfile.gettempdir(), f"maskgit_jax_test_cache_{_RUN}"))

from maskgit_jax import compile_cache  # noqa: E402  (after the environment it reads)

compile_cache.enable()
