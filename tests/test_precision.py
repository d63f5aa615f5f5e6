"""The float64 compute dtype (models/precision.py): what tests/test_distributed.py relies on.

Its 8-device and 1-device runs sum the batch's gradients in different orders; here the order
changes by permuting the batch, which leaves the mean loss, and so the exact gradient, unchanged.
In float32 the stage-1 gradients then differ by 1e-7 to 1e-6 per leaf; in float64 by 1e-15, but
only if every sum over the batch (the kernels', the codebook's and the norms' gradients) is float64.
A float32 step inside one example's computation does not show here (it moves with its example).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from maskgit_jax.data import normalize as norm
from maskgit_jax.models import discriminator as disc_lib
from maskgit_jax.models import from_config
from maskgit_jax.train import experiment, tokenizer_stage, transformer_stage

from tests import parallel_worker


def _worst_leaf(a, b) -> float:
    """The largest per-leaf |a - b| / |b| over leaves with a non-zero gradient, leaving out the
    attention key biases (exact gradient 0: see tests/test_distributed.py)."""
    worst = 0.0
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
        scale = float(jnp.linalg.norm(y))
        if scale and not jax.tree_util.keystr(path).endswith("['k']['bias']"):
            worst = max(worst, float(jnp.linalg.norm(x - y)) / scale)
    return worst


def _order_dependence(compute_dtype: str) -> tuple[float, float]:
    """(tokenizer, discriminator): the worst leaf's relative gradient change when the 8 images of
    the batch are permuted, at the stage-1 initialisation of the distributed tests' config."""
    c = parallel_worker.config("tokenizer", compute_dtype)
    model, disc, tx, disc_tx, opts = experiment.tokenizer_parts(c)
    # One compiled program (an eager init compiles a kernel per random parameter).
    state = jax.jit(lambda key: tokenizer_stage.init_state(key, model, disc, tx, disc_tx,
                                                           c.data.image_size))(jax.random.key(0))
    size = c.data.image_size
    images_BxHxWxC = np.random.default_rng(0).integers(0, 256, (8, size, size, 3), np.uint8)
    order = np.random.default_rng(1).permutation(8)
    x = norm.normalize(images_BxHxWxC, opts.mean, opts.std)

    def loss(params, x):  # reaches every parameter, the codebook too
        recon, aux = model.apply({"params": params}, x)
        return jnp.mean(jnp.square(recon - x)) + aux["vq_loss"]
    grad = jax.jit(jax.grad(loss))
    tokenizer = _worst_leaf(grad(state.params, x), grad(state.params, x[order]))
    d_loss = lambda dp, x: disc_lib.hinge_d_loss(disc.apply({"params": dp}, x),
                                                 disc.apply({"params": dp}, -x))
    d_grad = jax.jit(jax.grad(d_loss))
    return tokenizer, _worst_leaf(d_grad(state.disc_params, x), d_grad(state.disc_params, x[order]))


def test_float64_gradients_do_not_depend_on_the_summation_order():
    with jax.enable_x64(True):
        float64 = _order_dependence("float64")
    assert max(float64) < 1e-12, float64
    # The same check in float32 sees the rounding that float64 removes.
    float32 = _order_dependence("float32")
    assert max(float32) > 1e-9, float32


def test_float64_keeps_parameters_and_optimizer_state_in_float64():
    with jax.enable_x64(True):
        c = parallel_worker.config("tokenizer,transformer", "float64")
        model, disc, tx, disc_tx, _ = experiment.tokenizer_parts(c)
        stage1 = jax.eval_shape(lambda: tokenizer_stage.init_state(
            jax.random.key(0), model, disc, tx, disc_tx, c.data.image_size))
        transformer, tx, opts = experiment.transformer_parts(c)
        stage2 = jax.eval_shape(lambda: transformer_stage.init_state(
            jax.random.key(0), transformer, tx, ema=opts.ema_decay > 0))
    for state in (stage1, stage2):
        floats = [x.dtype for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
        assert floats and set(floats) == {jnp.dtype(jnp.float64)}


@pytest.mark.parametrize("name", ["float32", "bfloat16", "float16"])
def test_parameters_are_float32_for_the_configs_dtypes(name):
    assert from_config.param_dtype(name) == jnp.float32


def test_float64_without_64_bit_jax_is_refused():
    with jax.enable_x64(False):
        with pytest.raises(ValueError, match=r"compute_dtype='float64' needs 64-bit JAX"):
            from_config.compute_dtype("float64")
