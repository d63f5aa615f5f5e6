"""Inpainting, outpainting and generation with a VQGAN tokenizer and a MaskGIT transformer.

Pipeline per batch (the course lab's inpainting protocol), all inside one jitted function:
holes filled gray -> normalise -> VQ-encode -> token ids; tokens with any missing pixel -> [MASK];
iterative decoding (``decoding.decode``; with ``pixel_feedback`` each step's tokens over partly known
patches are re-encoded with those pixels) -> VQ-decode (with ``decode.render_temperature`` > 0 the
predicted tokens as their expected code vectors) -> de-normalise -> composite with the input.

The modules and ``InpaintConfig`` are static arguments of the jitted core and the parameters, images
and keys are traced arguments, so new parameters or new images of the same shape reuse the compiled
function. ``inpaint_batched`` runs a whole data set in fixed-size batches with per-example keys, so its
output does not depend on the batch size.
"""

import dataclasses
import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from maskgit_jax import decoding, masking, mesh as mesh_lib, seamless
from maskgit_jax.data import normalize
from maskgit_jax.official import decoding as official_decoding

COMPOSITES = ("none", "paste", "blend", "blur", "seamless")
MODES = ("inpaint", "generate", "outpaint")


@dataclasses.dataclass(frozen=True)
class InpaintConfig:
    """Static inpainting options (hashable: part of the jit cache key).

    decode: the iterative decoding options; ``decode.num_codes`` must be the VQGAN's codebook size.
    mean, std: per-channel normalisation of the input pixels (x / 255 - mean) / std.
    out_mean, out_std: de-normalisation of the decoded images; None = same as mean / std (the lab
      de-normalises its outputs with other statistics than it normalises its inputs).
    dilate: extra tokens (Chebyshev distance, in tokens) marked unknown around each unknown token.
    composite: 'none' = the whole decoded image (the lab's protocol); 'paste' = known pixels copied
      from the input; 'blend' = 'paste' with a linear ramp ``blend_width`` pixels wide on the known
      side of each hole border; 'blur' = the official MaskGIT demo's blend: the missing-pixel mask
      Gaussian-blurred (sigma = side / 16 - 1 pixels, the demo's radius) as the decoded image's
      weight, so the fill fades into the picture on both sides of the border; 'seamless' = 'paste'
      of a fill that keeps the decoded image's gradients and meets the known pixels without a seam
      (Poisson seamless cloning, ``seamless.seamless_fill``).
    hole_gray: the value the missing pixels are filled with before encoding (the lab uses gray).
    blend_width: width in pixels of the ramp of 'blend'.
    pixel_feedback: when a decoding step fixes a token that has known pixels in its patch, it fixes
      instead the VQ encoding of the step's decoded prediction with the known pixels pasted back
      (with ``composite='seamless'``: composited seamlessly, the fill shifted to meet them),
      and later steps take that token as given: the known pixels of partly missing patches, which
      the token mask hides from the transformer, reach the decoding (one VQ decode and encode per
      step). False is MaskGIT's decoding as published and the lab's.
    """
    decode: decoding.DecodeConfig
    mean: tuple[float, ...]
    std: tuple[float, ...]
    out_mean: Optional[tuple[float, ...]] = None
    out_std: Optional[tuple[float, ...]] = None
    dilate: int = 0
    composite: str = "paste"
    hole_gray: int = 128
    blend_width: int = 3
    pixel_feedback: bool = False

    def __post_init__(self):
        # Lists would make the config unhashable (and so unusable as a jit static argument).
        for name in ("mean", "std", "out_mean", "out_std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))
        if self.composite not in COMPOSITES:
            raise ValueError(f"composite must be one of {COMPOSITES}, got {self.composite!r}")
        if self.dilate < 0:
            raise ValueError(f"dilate must be >= 0, got {self.dilate}")
        if not 0 <= self.hole_gray <= 255:
            raise ValueError(f"hole_gray must be in [0, 255], got {self.hole_gray}")
        if self.blend_width < 1:
            raise ValueError(f"blend_width must be >= 1, got {self.blend_width}")

    @property
    def output_mean(self) -> tuple[float, ...]:
        return self.mean if self.out_mean is None else self.out_mean

    @property
    def output_std(self) -> tuple[float, ...]:
        return self.std if self.out_std is None else self.out_std


@dataclasses.dataclass
class InpaintResult:
    """NumPy outputs of ``inpaint``; S = decoding steps, L = tokens.

    images (B,H,W,3) uint8: the composited output.  decoded (B,H,W,3) uint8: the raw VQ-decoded image.
    unknown_tokens (B,L) bool: the tokens that were [MASK].  ids (B,L) int32: the final tokens.
    step_masks (S,B,L) bool: still-masked tokens after each step (only with return_history).
    step_images (S,B,H,W,3) uint8: the decoded full prediction of each step (only with return_history).
    """
    images: np.ndarray
    decoded: np.ndarray
    unknown_tokens: np.ndarray
    ids: np.ndarray
    step_masks: Optional[np.ndarray] = None
    step_images: Optional[np.ndarray] = None


def masks_for_mode(mode: str, known_BxHxW: np.ndarray) -> np.ndarray:
    """The known-pixel mask (B,H,W) bool to use for ``mode``.

    'inpaint': the mask unchanged.  'generate': nothing known, the whole image is generated.
    'outpaint': the inverse: pixels given as known are generated, pixels given as missing are kept
      (e.g. pass a centre box of False to keep the centre and generate the surroundings).
    """
    known_BxHxW = np.asarray(known_BxHxW, bool)
    if mode == "inpaint":
        return known_BxHxW
    if mode == "generate":
        return np.zeros_like(known_BxHxW)
    if mode == "outpaint":
        return ~known_BxHxW
    raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _decoded_weight(known_BxHxW: jnp.ndarray, cfg: InpaintConfig) -> jnp.ndarray:
    """Per-pixel weight (B,H,W) float32 of the decoded image in the composite (1 - weight: the input).

    'blend': 1 on missing pixels, then (w + 1 - d) / (w + 1) at Chebyshev distance d <= w from the
    nearest missing pixel, 0 further out: the sum over k = 0..w of "within k pixels of a hole", / (w + 1).
    'blur': the missing mask blurred by a Gaussian of sigma = side / 16 - 1 pixels (0 beyond 3 sigma).
    """
    missing_BxHxW = (~known_BxHxW).astype(jnp.float32)
    if cfg.composite == "none":
        return jnp.ones_like(missing_BxHxW)
    if cfg.composite == "paste":
        return missing_BxHxW
    if cfg.composite == "blur":
        h, w = missing_BxHxW.shape[1:]
        sigma = max(max(h, w) // 16 - 1, 1)
        return jnp.einsum("hi,bij,wj->bhw", _gaussian_matrix(h, sigma), missing_BxHxW,
                          _gaussian_matrix(w, sigma))
    grown_BxHxW, total_BxHxW = missing_BxHxW, missing_BxHxW
    for _ in range(cfg.blend_width):
        grown_BxHxW = jax.lax.reduce_window(grown_BxHxW, 0.0, jax.lax.max, (1, 3, 3), (1, 1, 1),
                                            "SAME")
        total_BxHxW = total_BxHxW + grown_BxHxW
    return total_BxHxW / (cfg.blend_width + 1)


def _gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) float32: row i averages the pixels around i with Gaussian weights (cut at 3 sigma,
    edge pixels repeated beyond the border, as image filters extend an image)."""
    radius = int(np.ceil(3 * sigma))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = np.zeros((n, n), np.float64)
    for offset, tap in zip(range(-radius, radius + 1), taps):
        np.add.at(out, (np.arange(n), np.clip(np.arange(n) + offset, 0, n - 1)), tap)
    return out.astype(np.float32)


def composite(input_BxHxWx3, decoded_BxHxWx3, known_BxHxW, cfg: InpaintConfig) -> jnp.ndarray:
    """uint8 composite of the decoded image over the input, by ``cfg.composite``; exact copies where
    the weight is 0 or 1 (integers are exact in float32). Any image size."""
    if cfg.composite == "seamless":
        mixed = seamless.seamless_fill(input_BxHxWx3, decoded_BxHxWx3, known_BxHxW)
    else:
        w_BxHxWx1 = _decoded_weight(known_BxHxW, cfg)[..., None]
        decoded, given = decoded_BxHxWx3.astype(jnp.float32), input_BxHxWx3.astype(jnp.float32)
        mixed = w_BxHxWx1 * decoded + (1 - w_BxHxWx1) * given
    return jnp.clip(jnp.round(mixed), 0, 255).astype(jnp.uint8)


def encode_images(vqgan, vq_vars, images_NxHxWx3, cfg: InpaintConfig) -> jnp.ndarray:
    """uint8 images (N,H,W,3) -> token ids (N,L)."""
    x = normalize.normalize(images_NxHxWx3, cfg.mean, cfg.std)
    _, idx_Nxhxw, _ = vqgan.apply(vq_vars, x, method=vqgan.encode)
    return idx_Nxhxw.reshape(idx_Nxhxw.shape[0], -1)


def decode_images(vqgan, vq_vars, ids_NxL, cfg: InpaintConfig) -> jnp.ndarray:
    """Token ids (N,L) -> de-normalised uint8 images (N,H,W,3)."""
    grid = vqgan.latent_resolution
    images = vqgan.apply(vq_vars, ids_NxL.reshape(-1, grid, grid), method=vqgan.decode_indices)
    return normalize.denormalize(images, cfg.output_mean, cfg.output_std)


def decode_latents(vqgan, vq_vars, z_NxLxD, cfg: InpaintConfig) -> jnp.ndarray:
    """Latent vectors (N,L,D) (e.g. expected code vectors) -> de-normalised images (N,H,W,3)."""
    grid = vqgan.latent_resolution
    z = z_NxLxD.reshape(-1, grid, grid, z_NxLxD.shape[-1])
    return normalize.denormalize(vqgan.apply(vq_vars, z, method=vqgan.decode),
                                 cfg.output_mean, cfg.output_std)


def _class_prefix(transformer, labels_B, batch: int) -> jnp.ndarray:
    """(B, P) tokens that lead every sequence: the class token of a class-conditional transformer
    (the official models: codebook_size + label, never masked), nothing (P = 0) otherwise."""
    if labels_B is None:
        return jnp.zeros((batch, 0), jnp.int32)
    return transformer.class_tokens(labels_B)[:, None]


@functools.partial(jax.jit, static_argnames=("vqgan", "transformer", "cfg", "return_history", "mesh"))
def _inpaint_core(vqgan, vq_vars, transformer, tr_params, filled_BxHxWx3, known_BxHxW, rng,
                  labels_B, cfg: InpaintConfig, return_history: bool,
                  mesh: Optional[Mesh] = None) -> dict[str, jnp.ndarray]:
    """The jitted pipeline on hole-filled uint8 images; returns the fields of ``InpaintResult``.

    labels_B: class labels for a class-conditional transformer, else None. Its class token is
    decoded as the sequence's first, known token (as the official decoder sees it) and dropped after.
    mesh: the outputs are split over its ``data`` axis along the batch (the inputs should be too).
    """
    ids_BxL = encode_images(vqgan, vq_vars, filled_BxHxWx3, cfg)
    unknown_BxL = masking.pixel_to_token_unknown(known_BxHxW, vqgan.latent_resolution, cfg.dilate)
    ids_BxL = jnp.where(unknown_BxL, cfg.decode.mask_id, ids_BxL)

    feedback, fed_back_BxL = None, jnp.zeros_like(unknown_BxL)
    if cfg.pixel_feedback:
        # Unknown tokens whose patch holds a known pixel: "missing" pixels of the inverted mask.
        fed_back_BxL = unknown_BxL & masking.pixel_to_token_unknown(~known_BxHxW, vqgan.latent_resolution)

        # Decoded with the input's normalisation, so that encoding inverts it; composited as the
        # output is when that keeps the known pixels exact ('seamless'), else pasted.
        fed_composite = "seamless" if cfg.composite == "seamless" else "paste"
        round_trip = dataclasses.replace(cfg, out_mean=None, out_std=None, composite=fed_composite)

        def feedback(prediction_BxL):
            decoded = decode_images(vqgan, vq_vars, prediction_BxL, round_trip)
            pasted = composite(filled_BxHxWx3, decoded, known_BxHxW, round_trip)
            return jnp.where(fed_back_BxL, encode_images(vqgan, vq_vars, pasted, cfg), prediction_BxL)

    prefix_BxP = _class_prefix(transformer, labels_B, ids_BxL.shape[0])
    p = prefix_BxP.shape[1]
    image_part = lambda seq: seq[..., p:]  # (..., P + L) -> (..., L)
    # Ids the decoder has filled in are its own guesses (flagged for self-conditioned transformers),
    # except the fed-back ones, which hold the known pixels' information.
    guessed = lambda seq: jnp.pad((image_part(seq) != cfg.decode.mask_id) & unknown_BxL & ~fed_back_BxL,
                                  ((0, 0), (p, 0)))
    tokens_to_logits = lambda seq: transformer.apply({"params": tr_params}, seq,
                                                     predicted_BxL=guessed(seq))
    seq_feedback = None if feedback is None else (
        lambda seq: jnp.concatenate([seq[:, :p], feedback(image_part(seq))], axis=1))
    decode = official_decoding.decode if cfg.decode.decoder == "official" else decoding.decode
    # code_kernel, render_temperature (maskgit_jax decoder only) look at the code vectors.
    codebook = ({"codebook_KxD": vqgan.apply(vq_vars, method=vqgan.code_vectors)}
                if cfg.decode.uses_codebook else {})
    state = decode(jnp.concatenate([prefix_BxP, ids_BxL], axis=1), rng, tokens_to_logits, cfg.decode,
                   return_history, seq_feedback, **codebook)
    expected_BxLxD = None if state.expected_BxLxD is None else state.expected_BxLxD[:, p:]
    state = jax.tree.map(image_part, state.replace(expected_BxLxD=None))
    if expected_BxLxD is None:
        decoded = decode_images(vqgan, vq_vars, state.ids_BxL, cfg)
    else:
        # The transformer's own predictions drawn as expected code vectors; known and fed-back
        # tokens (encodings of real pixels) as their codes.
        drawn_BxL = unknown_BxL & ~fed_back_BxL
        codes_BxLxD = jnp.take(codebook["codebook_KxD"], state.ids_BxL, axis=0)
        decoded = decode_latents(vqgan, vq_vars,
                                 jnp.where(drawn_BxL[..., None], expected_BxLxD, codes_BxLxD), cfg)
    out = dict(images=composite(filled_BxHxWx3, decoded, known_BxHxW, cfg), decoded=decoded,
               unknown_tokens=unknown_BxL, ids=state.ids_BxL)
    if return_history:
        steps, batch = state.history_ids_SxBxL.shape[:2]
        out["step_masks"] = state.history_ids_SxBxL == cfg.decode.mask_id
        # All B*S predictions through the VQ decoder at once, example-major: split over devices
        # along the batch, each device's rows are its own examples' steps (step-major rows would
        # interleave the devices' examples, and every device would decode every step image).
        predictions_NxL = jnp.swapaxes(state.history_prediction_SxBxL, 0, 1).reshape(batch * steps, -1)
        step_images = decode_images(vqgan, vq_vars, predictions_NxL, cfg)
        out["step_images"] = jnp.swapaxes(step_images.reshape((batch, steps) + step_images.shape[1:]),
                                          0, 1)
    return out if mesh is None else _split_over_batch(out, mesh)


def _split_over_batch(out: dict[str, jnp.ndarray], mesh: Mesh) -> dict[str, jnp.ndarray]:
    """The outputs declared split over ``mesh``'s ``data`` axis along their batch axis (axis 1 of
    the per-step fields), so that the compiler never gathers a batch onto every device."""
    spec = lambda name: P(None, "data") if name.startswith("step_") else P("data")
    return {name: jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec(name)))
            for name, x in out.items()}


def _as_variables(params_or_variables: Any) -> Any:
    """Accept both ``vqgan.init(...)`` output ({'params': ...}) and the bare params tree."""
    if hasattr(params_or_variables, "keys") and set(params_or_variables.keys()) == {"params"}:
        return params_or_variables
    return {"params": params_or_variables}


def _check_inputs(vqgan, transformer, images_BxHxWx3, known_BxHxW, cfg: InpaintConfig) -> None:
    """One-line errors for mismatched models, config or input shapes (instead of deep JAX errors)."""
    size = vqgan.img_resolution
    if images_BxHxWx3.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {images_BxHxWx3.dtype}")
    if images_BxHxWx3.ndim != 4 or images_BxHxWx3.shape[1:] != (size, size, 3):
        raise ValueError(f"images must have shape (B, {size}, {size}, 3), "
                         f"got {images_BxHxWx3.shape}")
    if known_BxHxW.shape != images_BxHxWx3.shape[:3]:
        raise ValueError(f"known mask shape {known_BxHxW.shape} does not match images "
                         f"{images_BxHxWx3.shape}")
    if not cfg.decode.num_codes == vqgan.num_codes == transformer.num_codes:
        raise ValueError(f"codebook sizes differ: decode config {cfg.decode.num_codes}, "
                         f"VQGAN {vqgan.num_codes}, transformer {transformer.num_codes}")
    if transformer.seq_len != vqgan.latent_resolution ** 2:
        raise ValueError(f"transformer seq_len {transformer.seq_len} != VQGAN tokens "
                         f"{vqgan.latent_resolution}^2")


def _dispatch(vqgan, vq_params, transformer, tr_params, images_BxHxWx3, known_BxHxW,
              cfg: InpaintConfig, rng: jax.Array, return_history: bool,
              mesh: Optional[Mesh] = None, labels_B=None) -> dict[str, jax.Array]:
    """Checks the inputs, fills the holes and starts the jitted core (asynchronously, device arrays).

    mesh: the per-example inputs and outputs are split over its ``data`` axis (every device decodes
    its share of the batch; the batch must divide evenly); None: wherever the inputs are.
    """
    images = np.asarray(images_BxHxWx3)
    known = np.asarray(known_BxHxW, bool)
    _check_inputs(vqgan, transformer, images, known, cfg)
    labels = _check_labels(transformer, labels_B, len(images))
    filled = normalize.fill_holes(images, known, cfg.hole_gray)
    place = (lambda x: x) if mesh is None else (
        lambda x: jax.device_put(x, mesh_lib.batch_sharded(mesh)))
    return _inpaint_core(vqgan, _as_variables(vq_params), transformer, tr_params, place(filled),
                         place(known), place(rng), labels_B=None if labels is None else place(labels),
                         cfg=cfg, return_history=return_history, mesh=mesh)


def _check_labels(transformer, labels_B, batch: int) -> Optional[np.ndarray]:
    """The class labels as int32 (B,), checked against the transformer (None: unconditional)."""
    conditional = getattr(transformer, "class_conditional", False)
    if labels_B is None:
        if conditional:
            raise ValueError(f"this model is class-conditional: give a class label "
                             f"(0..{transformer.num_classes - 1}) for each image")
        return None
    if not conditional:
        raise ValueError("this model is not class-conditional: it takes no class label")
    labels = np.asarray(labels_B)
    if labels.shape != (batch,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"class labels must be {batch} integers, got {labels.dtype} {labels.shape}")
    if labels.size and not 0 <= labels.min() <= labels.max() < transformer.num_classes:
        raise ValueError(f"class labels must be in [0, {transformer.num_classes}), got "
                         f"{labels.min()}..{labels.max()}")
    return labels.astype(np.int32)


def inpaint(vqgan, vq_params, transformer, tr_params, images_uint8_BxHxWx3, known_BxHxW,
            cfg: InpaintConfig, rng: jax.Array, return_history: bool = False,
            labels_B=None) -> InpaintResult:
    """Fills the missing pixels (``known_BxHxW`` False) of a batch; see the module docstring.

    vq_params: the VQGAN's params tree (or its variables {'params': ...}); tr_params: the transformer's.
    rng: one key, split over the batch, or one key per example (B,) (results then do not depend on
    what else is in the batch). labels_B: class labels (B,), for a class-conditional transformer only.
    """
    out = _dispatch(vqgan, vq_params, transformer, tr_params, images_uint8_BxHxWx3, known_BxHxW, cfg,
                    rng, return_history, labels_B=labels_B)
    return InpaintResult(**jax.device_get(out))


def _concat_batches(outs: list[dict[str, np.ndarray]], batches: list[np.ndarray]) -> InpaintResult:
    """Batch outputs joined along the batch axis (axis 1 for the per-step fields), one row per
    example: the padding rows (repeats of a batch's last example) dropped."""
    firsts = np.unique(np.concatenate(batches), return_index=True)[1]
    fields = {}
    for name in outs[0]:
        axis = 1 if name.startswith("step_") else 0
        fields[name] = np.take(np.concatenate([o[name] for o in outs], axis=axis), firsts, axis=axis)
    return InpaintResult(**fields)


def inpaint_batched(vqgan, vq_params, transformer, tr_params, images_uint8_NxHxWx3, known_NxHxW,
                    cfg: InpaintConfig, rng: jax.Array, batch_size: int,
                    return_history: bool = False, mesh: Optional[Mesh] = None,
                    labels_N=None) -> InpaintResult:
    """``inpaint`` over a data set of N images in batches of at most ``batch_size``.

    Example i decodes with key ``jax.random.fold_in(rng, i)``, so the tokens are the same for any
    batch size. With a ``mesh``, each batch is split over its ``data`` axis (every device decodes
    its share of the batch). Batch sizes follow ``batch_plan``: a few images never cost a full
    batch's work, and a few sizes (compilations) serve every call. labels_N: class labels (N,) of a
    class-conditional model.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    images = np.asarray(images_uint8_NxHxWx3)
    known = np.asarray(known_NxHxW, bool)
    count = images.shape[0]
    if count == 0 or known.shape[0] != count:
        raise ValueError(f"inpaint_batched: {count} images and {known.shape[0]} masks")
    batches = batch_plan(count, batch_size, 1 if mesh is None else mesh.devices.size)
    keys_N = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(rng, jnp.arange(count))
    labels = None if labels_N is None else np.asarray(labels_N)
    # Dispatch every batch before fetching any, so the device never waits for the host.
    outs = [_dispatch(vqgan, vq_params, transformer, tr_params, images[take], known[take], cfg,
                      keys_N[take], return_history, mesh=mesh,
                      labels_B=None if labels is None else labels[take])
            for take in batches]
    return _concat_batches(jax.device_get(outs), batches)


def batch_plan(count: int, batch_size: int, devices: int = 1) -> list[np.ndarray]:
    """The batches that run ``count`` examples: indices into the data set, one array per batch.

    Batches of ``batch_size`` (rounded up to a multiple of ``devices``), then the rest in one batch
    of the next power of two (also a multiple of ``devices``, at most ``batch_size``), padded by
    repeating its last example: at most twice the work of the examples it holds, and the sizes a
    process ever compiles for are ``batch_size`` and a few powers of two below it.
    """
    batch_size = _round_up(batch_size, devices)
    batches = []
    for start in range(0, count, batch_size):
        held = min(batch_size, count - start)
        size = min(batch_size, _round_up(1 << (held - 1).bit_length(), devices))
        batches.append(np.minimum(np.arange(start, start + size), count - 1))
    return batches


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple
