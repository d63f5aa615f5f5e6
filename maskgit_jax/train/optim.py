"""AdamW with linear warm-up then cosine decay, global-norm clipping; gradient accumulation; EMA."""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax


def learning_rate_schedule(lr: float, warmup_steps: int, total_steps: int) -> optax.Schedule:
    """0 -> lr linearly over warmup_steps, then cosine to 0 at total_steps."""
    warmup_steps = max(min(warmup_steps, total_steps - 1), 0)
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps, max(total_steps, 1), 0.0)


def decay_mask(params):
    """True for the leaves weight decay applies to: the ``kernel`` of every Dense / DenseGeneral /
    Conv layer, by Flax's naming. Biases, norm scales, token / position / flag embeddings, the
    codebook and the per-position output bias are not decayed, whatever their shape (as in BERT and
    the timm/nanoGPT AdamW recipes: decaying them only pulls offsets and scales towards 0)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params)


def adamw(lr: float, warmup_steps: int, total_steps: int, weight_decay: float, b1: float,
          b2: float, grad_clip: float) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(grad_clip) if grad_clip > 0 else optax.identity(),
        optax.adamw(learning_rate_schedule(lr, warmup_steps, total_steps), b1=b1, b2=b2,
                    weight_decay=weight_decay, mask=decay_mask),
    )


def accumulated_value_and_grad(loss_fn: Callable, params: Any, batch: jnp.ndarray, rng: jax.Array,
                               num_micro: int):
    """Mean loss, metrics and gradients over ``num_micro`` equal micro-batches of ``batch``.

    loss_fn(params, micro_batch, rng) -> (loss, metrics dict of scalars). One micro-batch at a time
    in a ``lax.scan``, so memory is that of one micro-batch; with num_micro = 1 it is a plain
    value_and_grad.
    """
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    if num_micro == 1:
        (loss, metrics), grads = grad_fn(params, batch, rng)
        return loss, metrics, grads
    if batch.shape[0] % num_micro:
        raise ValueError(f"batch of {batch.shape[0]} does not split into {num_micro} micro-batches")
    micro = batch.reshape(num_micro, batch.shape[0] // num_micro, *batch.shape[1:])

    def body(carry, xs):
        index, micro_batch = xs
        (loss, metrics), grads = grad_fn(params, micro_batch, jax.random.fold_in(rng, index))
        return jax.tree.map(jnp.add, carry, (loss, metrics, grads)), None

    (_, m0), g0 = jax.eval_shape(grad_fn, params, micro[0], rng)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (jnp.zeros(()), m0, g0))
    total, _ = jax.lax.scan(body, zeros, (jnp.arange(num_micro), micro))
    return jax.tree.map(lambda x: x / num_micro, total)


def ema_decay_at(step: jax.Array, decay: float) -> jax.Array:
    """The EMA decay for the update that makes ``step`` + 1 updates: min(decay, (1 + step) / (10 + step)).

    The warm-up of tf.train.ExponentialMovingAverage(num_updates=...) and of the timm / EfficientNet
    recipes: early on the average follows the parameters closely (0.1 at the first update, 0.5 at the
    ninth), so it never holds mostly the random initialisation; the full ``decay`` is reached after
    about 9 / (1 - decay) updates (9,000 for 0.999).
    """
    step = jnp.asarray(step, jnp.float32)
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def ema_update(ema_params: Any, params: Any, decay: jax.Array) -> Any:
    return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)
