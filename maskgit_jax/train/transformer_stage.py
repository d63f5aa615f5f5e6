"""Stage 2: train the bidirectional transformer on cached token ids (masked visual token modelling).

Per example: r ~ U(0,1), exactly ceil(gamma(r) * L) tokens replaced by [MASK], cross-entropy on the
masked positions (or all), optional label smoothing; AdamW, gradient accumulation and EMA.

Code-space targets (``code_targets_KxK``, config transformer.code_smoothing > 0): a tokenizer's
codebook holds many near-duplicate codes (shades of one colour), and a one-hot target asks the
model to tell apart codes that the decoder draws almost alike. With this option the target of a
token is its row of the kernel over code distances (code_space.kernel_matrix), normalised: most of
the mass on the code, the rest on its near-duplicates, none on codes that look different.

Self-conditioning (``self_condition`` > 0, off in the course recipe): iterative decoding feeds the
model its own earlier guesses as if they were given tokens, a context it never saw in training. With
this option a fraction of the examples first run the model once (no gradient) and get a random part
of their masked positions filled with its argmax guesses, flagged as predicted (the transformer's
``predicted_embedding``); the loss is on the positions still masked. The model so learns how much its
guesses are worth, and decoding with T > 1 steps stops paying for trusting them blindly.
"""

import dataclasses
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from maskgit_jax import code_space, masking
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
    self_condition: float = 0.0  # fraction of examples whose masked tokens are partly own guesses

    def __post_init__(self):
        if self.loss_on not in ("masked", "all"):
            raise ValueError(f"transformer.loss_on must be 'masked' or 'all', got {self.loss_on!r}")
        if not 0.0 <= self.self_condition <= 1.0:
            raise ValueError(f"transformer.self_condition must be in [0, 1], got {self.self_condition}")


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


def fill_with_guesses(rng, inputs_BxL, masked_BxL, guesses_BxL, fraction: float):
    """Fills part of the masked positions with guesses: (inputs, still masked, predicted), all (B, L).

    An example is chosen with probability ``fraction``; it then gets floor(u * masked) of its masked
    positions, u ~ U(0, 1), chosen uniformly, set to ``guesses_BxL`` and flagged as predicted.
    """
    batch = inputs_BxL.shape[0]
    choose_rng, share_rng, where_rng = jax.random.split(rng, 3)
    chosen_B = jax.random.uniform(choose_rng, (batch,)) < fraction
    share_B = jnp.where(chosen_B, jax.random.uniform(share_rng, (batch,)), 0.0)
    count_B = jnp.floor(share_B * jnp.sum(masked_BxL, axis=-1)).astype(jnp.int32)
    # Unmasked positions score above every masked one, so only masked positions are picked.
    scores_BxL = jnp.where(masked_BxL, jax.random.uniform(where_rng, masked_BxL.shape), 2.0)
    predicted_BxL = masking.lowest_k(scores_BxL, count_B)
    inputs_BxL = jnp.where(predicted_BxL, guesses_BxL.astype(inputs_BxL.dtype), inputs_BxL)
    return inputs_BxL, masked_BxL & ~predicted_BxL, predicted_BxL


def code_targets(codebook_KxD, width: float) -> jnp.ndarray:
    """(K, K) target distributions, row k for true code k: the code-distance kernel of ``width``
    (a fraction of the median squared distance between codes), each row normalised to sum 1."""
    kernel_KxK = code_space.kernel_matrix(codebook_KxD, width)
    return kernel_KxK / jnp.sum(kernel_KxK, axis=-1, keepdims=True)


def masked_token_loss(params, tokens_BxL, rng, *, model: BidirectionalTransformer,
                      opts: MaskedTokenLoss, train: bool = True, code_targets_KxK=None):
    """Mean cross-entropy over the scored positions and metrics; ``tokens_BxL`` holds real codes.

    train=False: no dropout (the validation loss). code_targets_KxK: row k is the target of true
    code k (``code_targets``); None: one-hot."""
    mask_rng, dropout_rng = jax.random.split(rng)
    batch, seq_len = tokens_BxL.shape
    grid = int(round(seq_len ** 0.5))
    masked_BxL = masking.training_mask(mask_rng, batch, grid, opts.schedule, opts.blob_prob)
    inputs_BxL = jnp.where(masked_BxL, model.mask_id, tokens_BxL)
    predicted_BxL = None
    if opts.self_condition > 0:
        # The decoder's guesses: argmax of a deterministic pass that no gradient flows through.
        first_BxLxV = model.apply({"params": jax.lax.stop_gradient(params)}, inputs_BxL, train=False)
        guesses_BxL = jnp.argmax(first_BxLxV[..., : model.num_codes], axis=-1)
        inputs_BxL, masked_BxL, predicted_BxL = fill_with_guesses(
            jax.random.fold_in(mask_rng, 1), inputs_BxL, masked_BxL, guesses_BxL, opts.self_condition)
    logits_BxLxV = model.apply({"params": params}, inputs_BxL, train=train,
                               predicted_BxL=predicted_BxL, rngs={"dropout": dropout_rng})
    # [MASK] is never a target: score the real codes only.
    logits_BxLxK = logits_BxLxV[..., : model.num_codes]
    hard_BxLxK = (jax.nn.one_hot(tokens_BxL, model.num_codes) if code_targets_KxK is None
                  else jnp.take(code_targets_KxK, tokens_BxL, axis=0))
    targets = optax.smooth_labels(hard_BxLxK, opts.label_smoothing)
    ce_BxL = optax.softmax_cross_entropy(logits_BxLxK, targets)
    weights_BxL = masked_BxL if opts.loss_on == "masked" else jnp.ones_like(masked_BxL)
    weights_BxL = weights_BxL.astype(jnp.float32)
    loss = jnp.sum(ce_BxL * weights_BxL) / jnp.maximum(jnp.sum(weights_BxL), 1.0)
    correct = (jnp.argmax(logits_BxLxK, -1) == tokens_BxL) & masked_BxL
    metrics = dict(masked_accuracy=jnp.sum(correct) / jnp.maximum(jnp.sum(masked_BxL), 1),
                   masked_fraction=jnp.mean(masked_BxL.astype(jnp.float32)))
    return loss, metrics


def validation_loss(params, tokens_BxL, rng, *, model: BidirectionalTransformer,
                    opts: MaskedTokenLoss) -> jax.Array:
    """The cross-entropy with one-hot targets (whatever the training targets), without dropout, on
    held-out ``tokens_BxL``; a fixed ``rng`` fixes the masks, so values at different steps differ
    only by the parameters."""
    return masked_token_loss(params, tokens_BxL, rng, model=model, opts=opts, train=False)[0]


def train_step(state: TransformerState, tokens_BxL, *, model: BidirectionalTransformer, tx,
               opts: MaskedTokenLoss, seed: int, code_targets_KxK=None):
    """One optimizer update over the global batch (in ``grad_accum`` micro-batches)."""
    rng = jax.random.fold_in(jax.random.key(seed), state.step)
    loss_fn = lambda p, b, r: masked_token_loss(p, b, r, model=model, opts=opts,
                                                code_targets_KxK=code_targets_KxK)
    loss, metrics, grads = optim.accumulated_value_and_grad(loss_fn, state.params, tokens_BxL, rng,
                                                            opts.grad_accum)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    ema = (optim.ema_update(state.ema_params, params, optim.ema_decay_at(state.step, opts.ema_decay))
           if opts.ema_decay else None)
    metrics.update(loss=loss, grad_norm=optax.tree.norm(grads))
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                         ema_params=ema), metrics
