"""Stage 1: train the VQGAN tokenizer.

Loss = l1 * |x - x'| + l2 * (x - x')^2 + VQ (codebook + beta commitment) [+ GAN hinge after a warm-up].
Dead codes (unused since the last restart) are re-initialised from encoder outputs every N updates,
with their Adam moments reset.
"""

import dataclasses
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from maskgit_jax.data import normalize as norm
from maskgit_jax.models import discriminator as disc_lib
from maskgit_jax.models.precision import at_least_float32
from maskgit_jax.models import vqgan as vq_lib


@dataclasses.dataclass(frozen=True)
class TokenizerLoss:
    """Static loss options (see configs: tokenizer.*)."""
    l1_weight: float = 1.0
    l2_weight: float = 1.0
    disc_weight: float = 0.0      # 0: no discriminator at all
    disc_start: int = 0           # updates before the GAN terms switch on
    restart_dead_codes_every: int = 0
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.5, 0.5, 0.5)


@flax.struct.dataclass
class TokenizerState:
    step: jnp.ndarray
    params: Any
    opt_state: Any
    disc_params: Any
    disc_opt_state: Any
    code_histogram: jnp.ndarray  # (K,) code counts since the last dead-code restart


def init_state(rng, model: vq_lib.VQGAN, disc: disc_lib.PatchDiscriminator, tx, disc_tx,
               image_size: int) -> TokenizerState:
    images = jnp.zeros((1, image_size, image_size, 3), jnp.float32)
    vq_rng, disc_rng = jax.random.split(rng)
    # The non-partitionable threefry draws the same kind of random parameters but compiles 2-6x
    # faster on XLA:CPU (python -m bench.init_compile); parameters start replicated, so nothing is
    # lost by not partitioning their random bits.
    with jax.threefry_partitionable(False):
        params = model.init(vq_rng, images)["params"]
        disc_params = disc.init(disc_rng, images)["params"]
    return TokenizerState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                          disc_params=disc_params, disc_opt_state=disc_tx.init(disc_params),
                          code_histogram=jnp.zeros((model.num_codes,), jnp.int32))


def reconstruction_loss(recon, x, opts: TokenizerLoss):
    """(l1_weight * l1 + l2_weight * l2, l1, l2) of a reconstruction ``recon`` of ``x``."""
    l1 = jnp.mean(jnp.abs(recon - x))
    l2 = jnp.mean(jnp.square(recon - x))
    return opts.l1_weight * l1 + opts.l2_weight * l2, l1, l2


def validation_loss(params, images_uint8, *, model: vq_lib.VQGAN, opts: TokenizerLoss) -> jax.Array:
    """The reconstruction part of the training loss on held-out images (no VQ or GAN term: those
    measure the codebook's and the discriminator's state, not how well images come back)."""
    x = norm.normalize(images_uint8, opts.mean, opts.std)
    recon, _ = model.apply({"params": params}, x)
    return reconstruction_loss(recon.astype(at_least_float32(recon.dtype)), x, opts)[0]


def reset_codebook_moments(opt_state, rows_K: jax.Array):
    """``opt_state`` with the codebook rows flagged in ``rows_K`` (K,) zeroed in every slot shaped
    like the parameters (Adam's first and second moments).

    A re-seeded code starts afresh: the moments its dead predecessor left (usually decayed towards 0,
    or the drift that killed it) would otherwise steer its first updates.
    """
    def reset(path, x):
        names = [getattr(k, "key", None) for k in path[-2:]]
        return jnp.where(rows_K[:, None], jnp.zeros_like(x), x) if names == ["codebook", "embedding"] else x

    return jax.tree_util.tree_map_with_path(reset, opt_state)


def train_step(state: TokenizerState, images_uint8, *, model: vq_lib.VQGAN,
               disc: disc_lib.PatchDiscriminator, tx, disc_tx, opts: TokenizerLoss, seed: int):
    """One update of the tokenizer (and the discriminator, once on). Pure; returns (state, metrics)."""
    restart_rng = jax.random.fold_in(jax.random.key(seed), state.step)
    x = norm.normalize(images_uint8, opts.mean, opts.std)
    gan_on = (state.step >= opts.disc_start).astype(jnp.float32) if opts.disc_weight > 0 else 0.0

    def loss_fn(params):
        recon, aux = model.apply({"params": params}, x)
        recon = recon.astype(at_least_float32(recon.dtype))
        rec_loss, l1, l2 = reconstruction_loss(recon, x, opts)
        loss = rec_loss + aux["vq_loss"]
        g_loss = jnp.zeros(())
        if opts.disc_weight > 0:
            g_loss = disc_lib.hinge_g_loss(disc.apply({"params": state.disc_params}, recon))
            loss = loss + gan_on * opts.disc_weight * g_loss
        metrics = dict(l1=l1, l2=l2, vq_loss=aux["vq_loss"], g_loss=g_loss,
                       perplexity=aux["perplexity"], usage=aux["usage"])
        return loss, (metrics, recon, aux)

    (loss, (metrics, recon, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics.update(loss=loss, grad_norm=optax.tree.norm(grads))

    disc_params, disc_opt_state = state.disc_params, state.disc_opt_state
    if opts.disc_weight > 0:
        def d_loss_fn(dp):
            real = disc.apply({"params": dp}, x)
            fake = disc.apply({"params": dp}, jax.lax.stop_gradient(recon))
            return gan_on * disc_lib.hinge_d_loss(real, fake)

        d_loss, d_grads = jax.value_and_grad(d_loss_fn)(disc_params)
        d_updates, disc_opt_state = disc_tx.update(d_grads, disc_opt_state, disc_params)
        disc_params = optax.apply_updates(disc_params, d_updates)
        metrics["d_loss"] = d_loss

    histogram = state.code_histogram + aux["histogram"]
    if opts.restart_dead_codes_every > 0:
        # Codes no batch picked since the last restart move onto this batch's encoder outputs.
        restart = (state.step + 1) % opts.restart_dead_codes_every == 0
        codebook = params["codebook"]["embedding"]
        candidates = aux["z_e"].reshape(-1, codebook.shape[-1])
        fresh = vq_lib.restart_dead_codes(codebook, histogram, candidates, restart_rng)
        metrics["dead_codes"] = jnp.sum(histogram == 0)
        params = {**params, "codebook": {"embedding": jnp.where(restart, fresh, codebook)}}
        opt_state = reset_codebook_moments(opt_state, restart & (histogram == 0))
        histogram = jnp.where(restart, jnp.zeros_like(histogram), histogram)

    new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                              disc_params=disc_params, disc_opt_state=disc_opt_state,
                              code_histogram=histogram)
    return new_state, metrics


def reconstruct(model: vq_lib.VQGAN, params, images_uint8, mean, std) -> np.ndarray:
    """uint8 reconstructions of uint8 images (for sample grids and tests)."""
    x = norm.normalize(images_uint8, mean, std)
    recon, _ = model.apply({"params": params}, x)
    return np.asarray(norm.denormalize(recon, mean, std))
