"""Stage 2: train the bidirectional transformer on cached token ids (masked visual token modelling).

Per example: r ~ U(0,1), exactly ceil(gamma(r) * L) tokens replaced by [MASK], cross-entropy on the
masked positions (or all), optional label smoothing; AdamW, gradient accumulation and EMA.
"""

import dataclasses
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from maskgit_jax import masking
from maskgit_jax.models.transformer import BidirectionalTransformer
from maskgit_jax.train import optim


@dataclasses.dataclass(frozen=True)
class MaskedTokenLoss:
    """Static options (see configs: transformer.*)."""
    schedule: str = "cosine"
    blob_prob: float = 0.0
    label_smoothing: float = 0.0
    loss_on: str = "masked"     # "masked" or "all"
    grad_accum: int = 1
    ema_decay: float = 0.0

    def __post_init__(self):
        if self.loss_on not in ("masked", "all"):
            raise ValueError(f"transformer.loss_on must be 'masked' or 'all', got {self.loss_on!r}")


@flax.struct.dataclass
class TransformerState:
    step: jnp.ndarray
    params: Any
    opt_state: Any
    ema_params: Any   # exponential moving average of params; None when EMA is off


def init_state(rng, model: BidirectionalTransformer, tx, ema: bool) -> TransformerState:
    params = model.init(rng, jnp.zeros((1, model.seq_len), jnp.int32))["params"]
    # A separate copy: the state is donated, and one buffer must not be donated twice.
    ema_params = jax.tree.map(jnp.copy, params) if ema else None
    return TransformerState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                            ema_params=ema_params)


def masked_token_loss(params, tokens_BxL, rng, *, model: BidirectionalTransformer,
                      opts: MaskedTokenLoss):
    """Mean cross-entropy over the scored positions and metrics; ``tokens_BxL`` holds real codes."""
    mask_rng, dropout_rng = jax.random.split(rng)
    batch, seq_len = tokens_BxL.shape
    grid = int(round(seq_len ** 0.5))
    masked_BxL = masking.training_mask(mask_rng, batch, grid, opts.schedule, opts.blob_prob)
    inputs_BxL = jnp.where(masked_BxL, model.mask_id, tokens_BxL)
    logits_BxLxV = model.apply({"params": params}, inputs_BxL, train=True,
                               rngs={"dropout": dropout_rng})
    # [MASK] is never a target: score the real codes only.
    logits_BxLxK = logits_BxLxV[..., : model.num_codes]
    targets = optax.smooth_labels(jax.nn.one_hot(tokens_BxL, model.num_codes), opts.label_smoothing)
    ce_BxL = optax.softmax_cross_entropy(logits_BxLxK, targets)
    weights_BxL = masked_BxL if opts.loss_on == "masked" else jnp.ones_like(masked_BxL)
    weights_BxL = weights_BxL.astype(jnp.float32)
    loss = jnp.sum(ce_BxL * weights_BxL) / jnp.maximum(jnp.sum(weights_BxL), 1.0)
    correct = (jnp.argmax(logits_BxLxK, -1) == tokens_BxL) & masked_BxL
    metrics = dict(masked_accuracy=jnp.sum(correct) / jnp.maximum(jnp.sum(masked_BxL), 1),
                   masked_fraction=jnp.mean(masked_BxL.astype(jnp.float32)))
    return loss, metrics


def train_step(state: TransformerState, tokens_BxL, *, model: BidirectionalTransformer, tx,
               opts: MaskedTokenLoss, seed: int):
    """One optimizer update over the global batch (in ``grad_accum`` micro-batches)."""
    rng = jax.random.fold_in(jax.random.key(seed), state.step)
    loss_fn = lambda p, b, r: masked_token_loss(p, b, r, model=model, opts=opts)
    loss, metrics, grads = optim.accumulated_value_and_grad(loss_fn, state.params, tokens_BxL, rng,
                                                            opts.grad_accum)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = optim.ema_update(state.ema_params, params, opts.ema_decay) if opts.ema_decay else None
    metrics.update(loss=loss, grad_norm=optax.tree.norm(grads))
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         ema_params=ema), metrics
