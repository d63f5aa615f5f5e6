"""google-research/maskgit's ``parallel_decode.decode``, step for step, in this project's decoder frame.

The official arithmetic (https://github.com/google-research/maskgit, libml/parallel_decode.py), so
that with the same key and inputs the same tokens come out:

- one key is carried through the loop; each step splits it twice, ``rng, r1 = split(rng)`` for
  sampling and ``rng, r2 = split(rng)`` for the masking noise;
- tokens are drawn with ``jax.random.categorical(r1, logits)`` (all positions, known ones included,
  then kept only where masked);
- after step t, ``max(1, min(#masked - 1, floor(unknown0 * clip(gamma((t + 1) / T), 1e-6, 1))))``
  tokens stay masked: those whose ``log p + choice_temperature * (1 - (t + 1) / T) * gumbel(r2)``
  is below the sorted confidences at that count (known tokens have confidence +inf);
- at least one token is always re-masked, so the result is the last step's full prediction (the
  official callers read ``final_seqs[:, -1]``); steps before ``start_iter`` are skipped.

The loop carries this project's ``DecodeState``, so it keeps its options: a per-step history (the
official ``final_seqs`` is ``history_prediction``), a sweet spot (stop early; what is masked takes
the last prediction), pixel feedback, and per-example keys: with one key per example, (B,) keys,
each example decodes as the official code decodes it alone (a batch of one), so its tokens do not
depend on the rest of the batch. With a single key the whole batch shares it, as upstream.
``sample_temperature`` 1 and ``confidence='logprob'`` are the official choices (0 takes the argmax
token; 'prob' ranks by p instead of log p); ``sampler='halton'`` fixes tokens in the Halton order.
"""

from typing import Optional

import flax
import jax
import jax.numpy as jnp

from maskgit_jax import halton, schedules
from maskgit_jax.decoding import DecodeConfig, DecodeState, Feedback, TokensToLogits, fix_with_feedback


@flax.struct.dataclass
class _Carry:
    state: DecodeState
    rng: jax.Array  # one key, or (B,) keys


def _per_example(rng: jax.Array) -> bool:
    typed = jnp.issubdtype(rng.dtype, jax.dtypes.prng_key)
    return rng.ndim == (1 if typed else 2)


def _split(rng: jax.Array, per_example: bool) -> tuple[jax.Array, jax.Array]:
    """``rng, sub = jax.random.split(rng)``, per example when the keys are."""
    keys = jax.vmap(jax.random.split)(rng) if per_example else jax.random.split(rng)
    return (keys[:, 0], keys[:, 1]) if per_example else (keys[0], keys[1])


def _draw(draw, key: jax.Array, per_example: bool, values):
    """``draw(key, values)``; per example, each row drawn as a batch of one with its own key."""
    if per_example:
        return jax.vmap(lambda k, v: draw(k, v[None])[0])(key, values)
    return draw(key, values)


def masked_count(t, cfg: DecodeConfig, unknown0_B, masked_now_B):
    """How many tokens the official decoder leaves masked after step t (at least one)."""
    ratio = 1.0 * (t + 1) / cfg.total_iter
    mask_ratio = jnp.clip(schedules.gamma(cfg.schedule, ratio, unknown0_B), 1e-6, 1.0)
    target_B = jnp.floor(unknown0_B * mask_ratio)
    return jnp.maximum(1, jnp.minimum(masked_now_B - 1, target_B)).astype(jnp.int32)


def decode(ids_BxL: jnp.ndarray, rng: jax.Array, tokens_to_logits: TokensToLogits,
           cfg: DecodeConfig, return_history: bool = False,
           feedback: Optional[Feedback] = None) -> DecodeState:
    """Fills every [MASK] (``cfg.mask_id``) as the official decoder does; see the module docstring.

    The history rows before ``cfg.start_iter`` hold the input, as the official ``final_seqs``.
    """
    ids_BxL = ids_BxL.astype(jnp.int32)
    per_example = _per_example(rng)
    unknown0_B = jnp.sum(ids_BxL == cfg.mask_id, axis=-1)
    hist_len = cfg.num_steps if return_history else 0
    history = jnp.broadcast_to(ids_BxL, (hist_len,) + ids_BxL.shape)

    def step(t, carry: _Carry) -> _Carry:
        state = carry.state
        logits_BxLxK = tokens_to_logits(state.ids_BxL)[..., : cfg.num_codes].astype(jnp.float32)
        rng, sample_rng = _split(carry.rng, per_example)
        if cfg.sample_temperature > 0:
            scaled = logits_BxLxK / cfg.sample_temperature
            sampled_BxL = _draw(jax.random.categorical, sample_rng, per_example, scaled)
        else:
            sampled_BxL = jnp.argmax(logits_BxLxK, axis=-1)
        unknown_BxL = state.ids_BxL == cfg.mask_id
        sampled_BxL = jnp.where(unknown_BxL, sampled_BxL, state.ids_BxL).astype(jnp.int32)

        probs_BxLxK = jax.nn.softmax(logits_BxLxK, axis=-1)
        p_BxL = jnp.take_along_axis(probs_BxLxK, sampled_BxL[..., None], axis=-1)[..., 0]
        p_BxL = jnp.where(unknown_BxL, p_BxL, jnp.inf)
        keep_Bx1 = masked_count(t, cfg, unknown0_B, jnp.sum(unknown_BxL, axis=-1))[:, None]
        rng, choice_rng = _split(rng, per_example)
        noise = cfg.choice_temperature * (1.0 - 1.0 * (t + 1) / cfg.total_iter)
        gumbel_BxL = _draw(lambda k, p: jax.random.gumbel(k, p.shape), choice_rng, per_example, p_BxL)
        conf_BxL = (jnp.log(p_BxL) if cfg.confidence == "logprob" else p_BxL) + noise * gumbel_BxL
        if cfg.sampler == "halton":  # a fixed order instead (the keys are split all the same)
            conf_BxL = jnp.where(unknown_BxL, halton.priority(conf_BxL.shape[1]), jnp.inf)
        cut_off_Bx1 = jnp.take_along_axis(jnp.sort(conf_BxL, axis=-1), keep_Bx1, axis=-1)
        still_masked_BxL = conf_BxL < cut_off_Bx1

        ids_BxL, prediction_BxL = fix_with_feedback(state.ids_BxL, unknown_BxL & ~still_masked_BxL,
                                                    sampled_BxL, cfg, feedback)
        return _Carry(state.after_step(t, ids_BxL, prediction_BxL, return_history), rng)

    start = _Carry(DecodeState(ids_BxL, ids_BxL, history, history), rng)
    state = jax.lax.fori_loop(cfg.start_iter, cfg.num_steps, step, start).state
    # At least one token is still masked (the official loop always re-masks one): it takes the
    # last step's prediction, which is what the official callers read (final_seqs[:, -1]).
    final_BxL, prediction_BxL = fix_with_feedback(state.ids_BxL, state.ids_BxL == cfg.mask_id,
                                                  state.prediction_BxL, cfg, feedback)
    return state.replace(ids_BxL=final_BxL, prediction_BxL=prediction_BxL)
