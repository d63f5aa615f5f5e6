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

import pytest  # noqa: E402

from tests.shared_folders import built_once  # noqa: E402


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A workdir of both stages of faces.py:tiny (4 updates each, checkpoints at 2 and 4, grids at
    4, exported to WORKDIR/model). Read-only."""
    def build(folder):
        from maskgit_jax.configs import faces as faces_config
        from maskgit_jax.train.main import train_and_evaluate
        train_and_evaluate(faces_config.get_config("tiny"), folder, progress=False)
    return built_once(tmp_path_factory, "tiny_run", build)
