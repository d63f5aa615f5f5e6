"""MaskGIT's iterative parallel decoding as one pure function over a ``tokens_to_logits`` callback.

Everything runs on device in one ``lax.fori_loop``: each step predicts every masked token, keeps the
least confident ones masked (how many follows the schedule) and fixes the rest. Counts are per example,
so an example's result does not depend on what else is in the batch. Compile it inside ``jax.jit``
with ``DecodeConfig`` static and the parameters as arguments: new parameters or new images then reuse
the compiled loop.
"""

import dataclasses
from typing import Callable, Optional

import flax
import jax
import jax.numpy as jnp

from maskgit_jax import code_space, halton, masking, schedules

TokensToLogits = Callable[[jnp.ndarray], jnp.ndarray]  # ids_BxL -> logits_BxLxV, V >= num_codes
# prediction_BxL (a code at every position) -> ids_BxL to fix instead, e.g. re-encoded with the known
# pixels pasted back (``inpaint``); the decoder takes them only where it fixes tokens in that step.
Feedback = Callable[[jnp.ndarray], jnp.ndarray]
DECODERS = ("maskgit_jax", "official")


@dataclasses.dataclass(frozen=True)
class DecodeConfig:
    """Static decoding options (hashable, so a jit cache key).

    num_codes: K; id K is [MASK] and is never predicted.
    total_iter: T, the number of steps the schedule is spread over.
    schedule: name of the mask schedule (see ``schedules.names()``).
    sweet_spot: stop after this many steps (<= T); tokens still masked then take their current best
      prediction. None runs all T steps.
    choice_temperature: scale of the Gumbel noise added to confidences, annealed by (1 - (t+1)/T).
    sample_temperature: 0 picks the argmax token; > 0 samples from softmax(logits / temperature).
    confidence: 'prob' (probability of the picked token) or 'logprob'.
    decoder: 'maskgit_jax' (this module: per-example keys folded in per step, exact counts) or
      'official' (google-research/maskgit's ``parallel_decode.decode`` arithmetic and key sequence,
      ``maskgit_jax.official.decoding``).
    start_iter: the first step run (editing starts later in the schedule, with fewer tokens to fix
      per step); steps before it are skipped.
    mask_token: the [MASK] id when it is not ``num_codes`` (the official models use -1).
    sampler: which masked tokens a step fixes: 'confidence' (the most confident, with the annealed
      Gumbel noise) or 'halton' (the next ones in a fixed Halton order of the grid, ``halton``).
    code_kernel: 0 picks the most probable code (MaskGIT as published); w > 0 picks the code with
      the most probability around it, each code's probability spread over the codebook by a Gaussian
      kernel of squared width w times the median squared distance between codes (``code_space``),
      its confidence that mass. Needs ``decode``'s ``codebook_KxD`` and argmax picks.
    render_temperature: 0 renders every fixed token as its code (MaskGIT as published); tau > 0 also
      keeps, per position, the expected code vector under softmax(logits / tau) of the step that
      fixed it (``decode``'s ``codebook_KxD``): the tokenizer then draws the prediction's mean where
      the transformer is unsure, which is closer in pixels than any one guess (``inpaint``).
    """
    num_codes: int
    total_iter: int = 8
    schedule: str = "cosine"
    sweet_spot: Optional[int] = None
    choice_temperature: float = 4.5
    sample_temperature: float = 0.0
    confidence: str = "prob"
    decoder: str = "maskgit_jax"
    start_iter: int = 0
    mask_token: Optional[int] = None
    sampler: str = "confidence"
    code_kernel: float = 0.0
    render_temperature: float = 0.0

    def __post_init__(self):
        schedules.get(self.schedule)  # fails early with the list of valid names
        if self.total_iter < 1:
            raise ValueError(f"total_iter must be >= 1, got {self.total_iter}")
        if self.sweet_spot is not None and not 1 <= self.sweet_spot <= self.total_iter:
            raise ValueError(f"sweet_spot must be in [1, total_iter={self.total_iter}], got {self.sweet_spot}")
        for name in ("choice_temperature", "sample_temperature", "code_kernel", "render_temperature"):
            value = getattr(self, name)
            if not 0 <= value < float("inf"):  # NaN fails too
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.confidence not in ("prob", "logprob"):
            raise ValueError(f"confidence must be 'prob' or 'logprob', got {self.confidence!r}")
        if self.sampler not in halton.SAMPLERS:
            raise ValueError(f"sampler must be one of {halton.SAMPLERS}, got {self.sampler!r}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.decoder!r}")
        for name in ("code_kernel", "render_temperature"):
            if getattr(self, name) > 0 and self.decoder != "maskgit_jax":
                raise ValueError(f"{name} > 0 needs decoder 'maskgit_jax' (the official decoder "
                                 "looks at token ids only)")
        if self.code_kernel > 0 and self.sample_temperature > 0:
            raise ValueError("code_kernel > 0 picks codes by their kernel mass: it needs "
                             "sample_temperature 0")
        if not 0 <= self.start_iter < self.num_steps:
            raise ValueError(f"start_iter must be in [0, {self.num_steps}) (the steps run), "
                             f"got {self.start_iter}")

    @property
    def mask_id(self) -> int:
        return self.num_codes if self.mask_token is None else self.mask_token

    @property
    def num_steps(self) -> int:
        return self.sweet_spot or self.total_iter

    @property
    def uses_codebook(self) -> bool:
        """Whether ``decode`` needs the tokenizer's code vectors (``codebook_KxD``)."""
        return self.code_kernel > 0 or self.render_temperature > 0


@flax.struct.dataclass
class DecodeState:
    """Loop carry. ``history_*`` have a leading steps axis, or length 0 when no history is kept."""
    ids_BxL: jnp.ndarray          # current ids; still-unknown positions hold [MASK]
    prediction_BxL: jnp.ndarray   # the last step's pick at every position
    history_ids_SxBxL: jnp.ndarray
    history_prediction_SxBxL: jnp.ndarray
    # With ``render_temperature`` > 0: per position, the expected code vector of the step that fixed
    # it (of the last step run for positions still masked; zeros at positions given as known).
    expected_BxLxD: Optional[jnp.ndarray] = None

    def after_step(self, t, ids_BxL, prediction_BxL, return_history: bool) -> "DecodeState":
        """The state after step ``t``: its ids and prediction, also as row ``t`` of the history
        when it is kept."""
        history_ids, history_pred = self.history_ids_SxBxL, self.history_prediction_SxBxL
        if return_history:
            history_ids = history_ids.at[t].set(ids_BxL)
            history_pred = history_pred.at[t].set(prediction_BxL)
        return self.replace(ids_BxL=ids_BxL, prediction_BxL=prediction_BxL,
                            history_ids_SxBxL=history_ids, history_prediction_SxBxL=history_pred)


def num_masked_after_step(t, cfg: DecodeConfig, unknown0_B, masked_now_B):
    """Tokens left masked after step t: floor(gamma((t+1)/T) * unknown0), revealing >= 1 per step, 0 at the end."""
    ratio = (t + 1) / cfg.total_iter
    target_B = jnp.floor(schedules.gamma(cfg.schedule, ratio, unknown0_B) * unknown0_B).astype(jnp.int32)
    target_B = jnp.clip(target_B, 0, jnp.maximum(masked_now_B - 1, 0))
    return jnp.where(t == cfg.total_iter - 1, 0, target_B)


def _pick_tokens(logits_BxLxK, rng_B, cfg: DecodeConfig, kernel_KxK=None):
    """(token, confidence) per position."""
    logp_BxLxK = jax.nn.log_softmax(logits_BxLxK, axis=-1)
    if kernel_KxK is not None:
        mass_BxLxK = code_space.kernel_mass(jnp.exp(logp_BxLxK), kernel_KxK)
        tokens_BxL = jnp.argmax(mass_BxLxK, axis=-1)
        mass_BxL = jnp.take_along_axis(mass_BxLxK, tokens_BxL[..., None], axis=-1)[..., 0]
        return tokens_BxL.astype(jnp.int32), mass_BxL if cfg.confidence == "prob" else jnp.log(mass_BxL)
    if cfg.sample_temperature > 0:
        sample = lambda key, logits: jax.random.categorical(key, logits / cfg.sample_temperature, axis=-1)
        tokens_BxL = jax.vmap(sample)(rng_B, logits_BxLxK)
    else:
        tokens_BxL = jnp.argmax(logits_BxLxK, axis=-1)
    logp_BxL = jnp.take_along_axis(logp_BxLxK, tokens_BxL[..., None], axis=-1)[..., 0]
    conf_BxL = jnp.exp(logp_BxL) if cfg.confidence == "prob" else logp_BxL
    return tokens_BxL.astype(jnp.int32), conf_BxL


def _per_example_keys(rng: jax.Array, batch: int) -> jax.Array:
    """(B,) keys from one key or B keys; typed keys and legacy uint32[2] keys alike."""
    typed = jnp.issubdtype(rng.dtype, jax.dtypes.prng_key)
    single = rng.ndim == (0 if typed else 1)
    return jax.random.split(rng, batch) if single else rng


def fix_with_feedback(ids_BxL, fixed_BxL, prediction_BxL, cfg: DecodeConfig,
                       feedback: Optional[Feedback]):
    """(ids, prediction) with the positions ``fixed_BxL`` set to ``feedback(prediction)`` (or to the
    prediction itself without feedback); known and earlier-fixed positions keep their ids."""
    if feedback is not None:
        fed_BxL = feedback(prediction_BxL).astype(jnp.int32)
        prediction_BxL = jnp.where(fixed_BxL, fed_BxL, prediction_BxL)
    return jnp.where(fixed_BxL, prediction_BxL, ids_BxL), prediction_BxL


def decode_parts(ids_BxL: jnp.ndarray, rng: jax.Array, tokens_to_logits: TokensToLogits,
                 cfg: DecodeConfig, return_history: bool = False, feedback: Optional[Feedback] = None,
                 codebook_KxD: Optional[jnp.ndarray] = None):
    """(initial state, ``step(t, state) -> state``): the loop of ``decode`` before it is run.

    ``decode`` runs the steps in one ``lax.fori_loop``; the pieces are public so that other loops
    (e.g. a host loop that looks at every step) run exactly the same steps.
    """
    if cfg.uses_codebook != (codebook_KxD is not None):
        raise ValueError("give codebook_KxD exactly when code_kernel or render_temperature > 0 "
                         "(the tokenizer's code vectors they look at)")
    kernel_KxK = None if cfg.code_kernel == 0 else code_space.kernel_matrix(codebook_KxD, cfg.code_kernel)
    render = cfg.render_temperature > 0
    ids_BxL = ids_BxL.astype(jnp.int32)
    rng_B = _per_example_keys(rng, ids_BxL.shape[0])
    unknown0_B = jnp.sum(ids_BxL == cfg.mask_id, axis=-1)
    hist_len = cfg.num_steps if return_history else 0
    empty = jnp.zeros((hist_len,) + ids_BxL.shape, jnp.int32)

    def step(t, state: DecodeState) -> DecodeState:
        logits_BxLxK = tokens_to_logits(state.ids_BxL)[..., : cfg.num_codes].astype(jnp.float32)
        step_rng_Bx2 = jax.vmap(lambda key: jax.random.split(jax.random.fold_in(key, t)))(rng_B)
        picked_BxL, conf_BxL = _pick_tokens(logits_BxLxK, step_rng_Bx2[:, 0], cfg, kernel_KxK)
        unknown_BxL = state.ids_BxL == cfg.mask_id
        picked_BxL = jnp.where(unknown_BxL, picked_BxL, state.ids_BxL)

        keep_B = num_masked_after_step(t, cfg, unknown0_B, jnp.sum(unknown_BxL, axis=-1))
        noise_scale = cfg.choice_temperature * (1.0 - (t + 1) / cfg.total_iter)
        gumbel_BxL = jax.vmap(lambda key: jax.random.gumbel(key, conf_BxL.shape[1:]))(step_rng_Bx2[:, 1])
        conf_BxL = conf_BxL + noise_scale * gumbel_BxL
        if cfg.sampler == "halton":
            conf_BxL = jnp.broadcast_to(halton.priority(conf_BxL.shape[1]), conf_BxL.shape)
        # Known and already fixed positions can never be chosen to stay masked.
        conf_BxL = jnp.where(unknown_BxL, conf_BxL, jnp.inf)
        still_masked_BxL = masking.lowest_k(conf_BxL, keep_B)
        new_ids_BxL, picked_BxL = fix_with_feedback(state.ids_BxL, unknown_BxL & ~still_masked_BxL,
                                                     picked_BxL, cfg, feedback)
        if render:
            # Every position unknown before this step: the ones fixed now keep this value (they are
            # never unknown again); the ones still masked are overwritten by later steps.
            probs_BxLxK = jax.nn.softmax(logits_BxLxK / cfg.render_temperature, axis=-1)
            expected_BxLxD = jnp.where(unknown_BxL[..., None],
                                       code_space.expected_codes(probs_BxLxK, codebook_KxD),
                                       state.expected_BxLxD)
            state = state.replace(expected_BxLxD=expected_BxLxD)
        return state.after_step(t, new_ids_BxL, picked_BxL, return_history)

    expected = (None if not render
                else jnp.zeros(ids_BxL.shape + codebook_KxD.shape[-1:], jnp.float32))
    return DecodeState(ids_BxL, ids_BxL, empty, empty, expected), step


def finish(state: DecodeState, cfg: DecodeConfig, feedback: Optional[Feedback] = None) -> DecodeState:
    """Stopped at the sweet spot: what is still masked takes the last step's prediction (through
    ``feedback`` when given, as if fixed in a last step)."""
    if cfg.num_steps == cfg.total_iter:
        return state  # the last step fixed everything; spares the feedback's cost
    final_BxL, prediction_BxL = fix_with_feedback(state.ids_BxL, state.ids_BxL == cfg.mask_id,
                                                   state.prediction_BxL, cfg, feedback)
    return state.replace(ids_BxL=final_BxL, prediction_BxL=prediction_BxL)


def decode(ids_BxL: jnp.ndarray, rng: jax.Array, tokens_to_logits: TokensToLogits,
           cfg: DecodeConfig, return_history: bool = False,
           feedback: Optional[Feedback] = None,
           codebook_KxD: Optional[jnp.ndarray] = None) -> DecodeState:
    """Fills every [MASK] in ``ids_BxL``; known tokens never change.

    ``rng`` is one key per example (shape (B,)), or a single key that is split into B. An example decoded
    with the same key gives the same result whatever else is in the batch.
    Returns the final state: ``ids_BxL`` has no [MASK] left. With ``return_history`` the state also
    holds, per step, the ids after the step (still-masked positions as [MASK]) and the full prediction.
    ``feedback`` replaces the tokens a step fixes by ``feedback(prediction)`` at those positions (and
    in the step's recorded prediction); which and how many positions are fixed does not change.
    ``codebook_KxD``: the tokenizer's code vectors, exactly when ``cfg.uses_codebook`` (the kernel
    pick; with ``render_temperature`` > 0 the state also holds each position's expected code vector,
    ``DecodeState.expected_BxLxD``).
    """
    state, step = decode_parts(ids_BxL, rng, tokens_to_logits, cfg, return_history, feedback,
                               codebook_KxD)
    return finish(jax.lax.fori_loop(cfg.start_iter, cfg.num_steps, step, state), cfg, feedback)
