"""What a trained model is, apart from its parameters: architecture, normalisation, decoding defaults.

A ``ModelConfig`` is the ``config.json`` of an exported model (``maskgit_jax.model_files``). It holds
nothing of the training run (optimizer, data pipeline, schedule of updates): those stay in the
training config, from which ``from_training_config`` takes what inference needs.

``DecodingOptions`` are the one place where decoding defaults live: a model carries its own (the
course's protocol for a converted course checkpoint, the project's recommendation for its own models)
and every caller (``MaskGIT.inpaint``, sample.py, the sweep) overrides only what it is given.
"""

import dataclasses
from typing import Any, Optional

from maskgit_jax import decoding, inpaint
from maskgit_jax.models import from_config, official_transformer
from maskgit_jax.models.official_transformer import OfficialTransformer
from maskgit_jax.models.official_vqgan import OfficialVQGAN
from maskgit_jax.models.transformer import BidirectionalTransformer
from maskgit_jax.models.vqgan import VQGAN, make_vqgan

FORMAT = "maskgit_jax.model"
# Raised whenever a reader of the previous version would misread (or refuse) a new file. 2: the
# official architecture, decoder / start_iter / sampler options, the parameter file's sha256.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
# (tokenizer, transformer) module of each architecture
ARCHITECTURES = {"maskgit_jax": (VQGAN, BidirectionalTransformer),
                 "official": (OfficialVQGAN, OfficialTransformer)}


@dataclasses.dataclass(frozen=True)
class DecodingOptions:
    """How a model inpaints unless told otherwise (see ``decoding.DecodeConfig`` and
    ``inpaint.InpaintConfig`` for each field's meaning).

    schedule: mask schedule gamma by name; total_iter: decoding steps T; sweet_spot: stop after this
    many steps (None: all T); choice_temperature: Gumbel noise scale on the confidences, annealed to
    0; sample_temperature: 0 = argmax tokens, > 0 = sampled at that temperature; confidence: 'prob'
    or 'logprob'; composite: 'none' | 'paste' | 'blend' | 'blur' | 'seamless'; pixel_feedback:
    re-encode tokens over partly known patches with those pixels; dilate: grow the unknown token
    region by this many tokens; decoder: 'maskgit_jax' or 'official' (google-research/maskgit's
    arithmetic); start_iter: the first decoding step run (the official editing mode starts at 2);
    sampler: 'confidence' or 'halton' (tokens fixed in a fixed Halton order); code_kernel: 0 = the
    most probable code, w > 0 = the code with the most probability around it (a Gaussian kernel of
    squared width w times the median squared distance between codes); render_temperature: 0 =
    predicted tokens drawn as their codes, tau > 0 = as the expected code vector under
    softmax(logits / tau).
    """
    schedule: str = "square"
    total_iter: int = 8
    sweet_spot: Optional[int] = None
    choice_temperature: float = 4.5
    sample_temperature: float = 0.0
    confidence: str = "prob"
    composite: str = "paste"
    pixel_feedback: bool = True
    dilate: int = 0
    decoder: str = "maskgit_jax"
    start_iter: int = 0
    sampler: str = "confidence"
    code_kernel: float = 0.0
    render_temperature: float = 0.0

    def __post_init__(self):
        # DecodeConfig and InpaintConfig check every field (a bad one fails here, not at decoding).
        self.inpaint_config(num_codes=1, mean=(0.0,), std=(1.0,))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, values: dict, where: str = "decoding options") -> "DecodingOptions":
        """From a JSON object or a config's ``sample`` section (``sweet_spot`` 0: all steps)."""
        unknown = sorted(set(values) - set(cls.names()))
        if unknown:
            raise ValueError(f"{where}: unknown option(s) {unknown}; known: {list(cls.names())}")
        values = dict(values)
        if values.get("sweet_spot") == 0:
            values["sweet_spot"] = None
        try:
            return cls(**values)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None

    def override(self, **values) -> "DecodingOptions":
        """These options with the given ones replaced; None means "keep this option's default".

        ``sweet_spot=0`` runs all steps. A sweet spot only makes sense for the T it was chosen for,
        so a new ``total_iter`` without a ``sweet_spot`` runs all of its steps.
        """
        given = {k: v for k, v in values.items() if v is not None}
        unknown = sorted(set(given) - set(self.names()))
        if unknown:
            raise TypeError(f"unknown decoding option(s) {unknown}; known: {list(self.names())}")
        if "total_iter" in given and given["total_iter"] != self.total_iter:
            given.setdefault("sweet_spot", None)
        return self.from_dict({**dataclasses.asdict(self), **given}, "decoding options")

    def inpaint_config(self, num_codes: int, mean, std, output_mean=None, output_std=None,
                       mask_token: Optional[int] = None) -> inpaint.InpaintConfig:
        return inpaint.InpaintConfig(
            decode=decoding.DecodeConfig(
                num_codes=num_codes, total_iter=self.total_iter, schedule=self.schedule,
                sweet_spot=self.sweet_spot, choice_temperature=self.choice_temperature,
                sample_temperature=self.sample_temperature, confidence=self.confidence,
                decoder=self.decoder, start_iter=self.start_iter, mask_token=mask_token,
                sampler=self.sampler, code_kernel=self.code_kernel,
                render_temperature=self.render_temperature),
            mean=mean, std=std, out_mean=output_mean, out_std=output_std, dilate=self.dilate,
            composite=self.composite, pixel_feedback=self.pixel_feedback)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A trained MaskGIT model without its parameters.

    tokenizer: ``models.vqgan.VQGAN`` constructor arguments (sizes, codebook, image resolution).
    transformer: ``models.transformer.BidirectionalTransformer`` arguments (num_codes and seq_len
      included), or None for a tokenizer alone (e.g. the course's VQGAN.pt before stage 2).
    mean, std: per-channel normalisation of [0, 1] input pixels, (x - mean) / std.
    output_mean, output_std: de-normalisation of decoded images; None = mean, std (the course
      normalises its test images with their own statistics and de-normalises with them too).
    compute_dtype: activation dtype name ('float32', 'bfloat16'); parameters are float32 (both
      float64 for 'float64', which needs 64-bit JAX: ``models.precision``).
    decoding: the model's decoding defaults.
    about: free-form facts for people (name, data, licence, attribution, training updates).
    architecture: 'maskgit_jax' (``VQGAN`` + ``BidirectionalTransformer``) or 'official' (the
      google-research/maskgit ImageNet models: ``OfficialVQGAN`` + the class-conditional
      ``OfficialTransformer``, whose [MASK] id is -1).
    """
    tokenizer: dict
    transformer: Optional[dict]
    mean: tuple
    std: tuple
    output_mean: Optional[tuple] = None
    output_std: Optional[tuple] = None
    compute_dtype: str = "float32"
    decoding: DecodingOptions = DecodingOptions()
    about: dict = dataclasses.field(default_factory=dict)
    architecture: str = "maskgit_jax"

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {tuple(ARCHITECTURES)}, "
                             f"got {self.architecture!r}")

    @property
    def image_size(self) -> int:
        return int(self.tokenizer["img_resolution"])

    def vqgan(self):
        if self.architecture == "official":
            return OfficialVQGAN(**_hashable(self.tokenizer))
        return make_vqgan(self.tokenizer, dtype=from_config.compute_dtype(self.compute_dtype),
                          param_dtype=from_config.param_dtype(self.compute_dtype))

    def bidirectional_transformer(self):
        if self.transformer is None:
            return None
        if self.architecture == "official":
            return OfficialTransformer(**self.transformer)
        return BidirectionalTransformer(dtype=from_config.compute_dtype(self.compute_dtype),
                                        param_dtype=from_config.param_dtype(self.compute_dtype),
                                        **self.transformer)

    def inpaint_config(self, options: DecodingOptions) -> inpaint.InpaintConfig:
        mask_token = official_transformer.MASK_ID if self.architecture == "official" else None
        return options.inpaint_config(self.tokenizer["num_codes"], self.mean, self.std,
                                      self.output_mean, self.output_std, mask_token)

    def to_json_dict(self) -> dict:
        out = {"format": FORMAT, "format_version": FORMAT_VERSION}
        out.update(dataclasses.asdict(self))
        return out

    @classmethod
    def from_json_dict(cls, values: dict, where: str) -> "ModelConfig":
        """Reads ``to_json_dict``'s output; ``where`` (the file) starts every error message."""
        values = dict(values)
        if values.pop("format", None) != FORMAT:
            raise ValueError(f"{where}: not a maskgit_jax model config (no \"format\": \"{FORMAT}\")")
        version = values.pop("format_version", None)
        if version not in READABLE_VERSIONS:
            raise ValueError(f"{where}: model format version {version}; this maskgit_jax reads "
                             f"versions {', '.join(map(str, READABLE_VERSIONS))} (upgrade maskgit_jax "
                             "to read newer models)")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - fields)
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.name not in values and f.default is dataclasses.MISSING
                         and f.default_factory is dataclasses.MISSING)
        if unknown or missing:
            raise ValueError(f"{where}: unknown field(s) {unknown}, missing field(s) {missing}")
        try:
            values["decoding"] = DecodingOptions.from_dict(values.get("decoding", {}),
                                                           f"{where}: decoding")
            for name in ("mean", "std", "output_mean", "output_std"):
                if values.get(name) is not None:
                    values[name] = tuple(float(v) for v in values[name])
            tokenizer, transformer = ARCHITECTURES[values.get("architecture", "maskgit_jax")]
            _check_keys(values["tokenizer"], tokenizer, f"{where}: tokenizer")
            if values["transformer"] is not None:
                _check_keys(values["transformer"], transformer, f"{where}: transformer")
            config = cls(**values)
            _check_token_grid(config, where)
            return config
        except (TypeError, AttributeError, KeyError) as e:  # wrong value types: still one line naming the file
            raise ValueError(f"{where}: malformed model config ({e})") from None


def _check_token_grid(config: "ModelConfig", where: str) -> None:
    """The transformer reads the tokenizer's whole token grid: an image size that does not give its
    seq_len (an edited or corrupt config.json) would decode garbage or allocate without bound."""
    if config.transformer is None:
        return
    grid = config.vqgan().latent_resolution
    if grid * grid != config.transformer.get("seq_len"):
        raise ValueError(f"{where}: the tokenizer makes {grid}x{grid} tokens of "
                         f"{config.image_size}x{config.image_size} images, but the transformer reads "
                         f"{config.transformer.get('seq_len')}")


def _check_keys(values: dict, module, where: str) -> None:
    known = set(module.__dataclass_fields__) - {"parent", "name", "dtype", "param_dtype"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}")


def decoding_from_training_config(config) -> DecodingOptions:
    """The ``sample`` section of a training config as decoding defaults (absent fields: the defaults)."""
    sample = config.sample.to_dict() if "sample" in config else {}
    return DecodingOptions.from_dict({k: v for k, v in sample.items() if k in DecodingOptions.names()},
                                     "config.sample")


def from_training_config(config, with_transformer: bool = True, about: Optional[dict] = None) -> ModelConfig:
    """The model a training config (configs/*.py, or a workdir's config.json) describes.

    Inference normalises with the test statistics where the config has them (``data.test_mean``:
    the course normalises and de-normalises its test images with their own statistics).
    """
    data = config.data
    tokenizer = from_config.vqgan(config)
    transformer = None
    if with_transformer:
        transformer = dict(config.transformer_model.to_dict(), num_codes=tokenizer.num_codes,
                           seq_len=tokenizer.latent_resolution ** 2)
    return ModelConfig(
        tokenizer=_plain(config.vqgan.to_dict()), transformer=_plain(transformer),
        mean=tuple(float(v) for v in data.get("test_mean", data.mean)),
        std=tuple(float(v) for v in data.get("test_std", data.std)),
        compute_dtype=config.compute_dtype, decoding=decoding_from_training_config(config),
        about=dict(about or {}))


def _hashable(values: dict) -> dict:
    """Lists (from JSON) as tuples: modules are jit static arguments, so they must hash."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def _plain(value: Any) -> Any:
    """Tuples as lists (what JSON gives back), so a config compares equal after a round trip."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
