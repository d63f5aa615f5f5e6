"""Tests for maskgit_jax.models.discriminator."""

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from maskgit_jax.models.discriminator import PatchDiscriminator, hinge_d_loss, hinge_g_loss


def _variables(d, x, seed=0):
    """Variables with init's tree/shapes (via eval_shape) and NumPy values: a real init compiles
    one random kernel per parameter, slow on a shared 2-core CPU."""
    shapes = jax.eval_shape(lambda: d.init(jax.random.PRNGKey(0), x))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        if path[-1].key == "kernel":
            return jnp.asarray(rng.normal(0, 1 / np.sqrt(np.prod(leaf.shape[:-1])), leaf.shape),
                               jnp.float32)
        return jnp.asarray(float(path[-1].key == "scale") + rng.normal(0, 0.1, leaf.shape),
                           jnp.float32)

    return shapes, jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.mark.parametrize("num_layers,hw", [(3, 6), (2, 14), (1, 30)])
def test_output_shape(num_layers, hw):
    # 64 -> /2 per stride-2 conv (num_layers of them), then two 4x4 stride-1 pad-1 convs (-1 each)
    d = PatchDiscriminator(base_channels=8, num_layers=num_layers)
    x = jnp.zeros((2, 64, 64, 3))
    out = jax.eval_shape(lambda: d.apply(d.init(jax.random.PRNGKey(0), x), x))
    assert out.shape == (2, hw, hw, 1)


def test_stateless_and_local():
    d = PatchDiscriminator(base_channels=8, num_layers=1)
    x = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype(np.float32)
    shapes, variables = _variables(d, x)
    assert set(shapes) == {"params"}  # GroupNorm, no batch_stats
    apply = jax.jit(d.apply)
    out = np.asarray(apply(variables, x))
    assert out.shape == (1, 30, 30, 1) and out.dtype == np.float32
    # Receptive field with 1 layer is 16 px (4, then +6, +6 at stride 2): changing pixel (0, 0)
    # touches only the first few logit rows/columns, i.e. the output really is per patch.
    x2 = x.copy()
    x2[0, 0, 0, :] += 10.0
    out2 = np.asarray(apply(variables, x2))
    diff = np.abs(out2 - out)[0, :, :, 0] > 1e-6
    assert diff[0, 0]
    # GroupNorm is global over the image, so far logits may shift a little through the
    # statistics, but they do not change as strongly as the ones over the pixel.
    assert np.abs(out2 - out)[0, 10:, 10:].max() < np.abs(out2 - out)[0, :2, :2].max()


def test_bf16_runs():
    d = PatchDiscriminator(base_channels=8, num_layers=2, dtype=jnp.bfloat16)
    x = jnp.ones((1, 32, 32, 3))
    shapes, v = _variables(d, x)
    assert all(l.dtype == jnp.float32 for l in jax.tree_util.tree_leaves(shapes))
    out = jax.jit(d.apply)(v, x)
    assert out.dtype == jnp.float32 and np.all(np.isfinite(np.asarray(out)))


def test_hinge_losses_by_hand():
    real = jnp.array([2.0, 0.5, -1.0])  # relu(1 - r) = 0, 0.5, 2   -> mean 2.5/3
    fake = jnp.array([-2.0, 0.0, 1.0])  # relu(1 + f) = 0, 1, 2     -> mean 1
    assert float(hinge_d_loss(real, fake)) == pytest.approx(0.5 * (2.5 / 3 + 1.0))
    assert float(hinge_g_loss(fake)) == pytest.approx(1.0 / 3.0)
    # perfectly separated beyond the margin: zero discriminator loss
    assert float(hinge_d_loss(jnp.full((4,), 3.0), jnp.full((4,), -3.0))) == 0.0
    assert float(hinge_d_loss(jnp.zeros((2, 3, 3, 1)), jnp.zeros((2, 3, 3, 1)))) == 1.0
