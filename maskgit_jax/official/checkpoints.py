"""The released files of google-research/maskgit and the architectures they hold.

Each checkpoint (``maskgit_imagenet256_checkpoint``, ``tokenizer_imagenet256_checkpoint``, ...) is
``flax.serialization.to_bytes({"params": tree})``: a msgpack map of float32 arrays and nothing else
(no step, no optimizer, no batch statistics). ``read`` decodes it with flax's msgpack reader, which
builds arrays from raw bytes only (no pickle, no code from the file), and checks it is such a map.

The presets are the constructor arguments of ``OfficialTransformer`` / ``OfficialVQGAN`` that
match the released files: the tokenizer is the same at 256 and 512 pixels; the 512 transformer only
has more positions (1 + 32 * 32).
"""

import math
import os
from pathlib import Path
from typing import Optional

import numpy as np
from flax import serialization

from maskgit_jax.model_config import DecodingOptions, ModelConfig

NUM_CLASSES = 1000  # ImageNet
# (tokenizer, transformer) file names a folder of official checkpoints may hold: the released
# names (256 or 512 px), and those of a reduced pair written like them (tests/data/official).
PAIR_NAMES = tuple((f"tokenizer_imagenet{size}_checkpoint", f"maskgit_imagenet{size}_checkpoint")
                   for size in (256, 512)) + (("tokenizer_ckpt", "transformer_ckpt"),)
# How the official code decodes (inference.py: 16 steps for generation, cosine schedule, choice
# temperature 4.5, tokens sampled at temperature 1, log-probability confidences).
DECODING = DecodingOptions(schedule="cosine", total_iter=16, choice_temperature=4.5,
                           sample_temperature=1.0, confidence="logprob", composite="paste",
                           pixel_feedback=False, decoder="official")
ABOUT = {"origin": "google-research/maskgit (https://github.com/google-research/maskgit), "
                   "class-conditional ImageNet checkpoints",
         "licence": "Apache-2.0 (the released code and checkpoints)",
         "paper": "Chang et al., MaskGIT: Masked Generative Image Transformer, CVPR 2022"}


def tokenizer_preset(image_size: int) -> dict:
    return dict(img_resolution=image_size, filters=128, channel_multipliers=(1, 1, 2, 2, 4),
                num_res_blocks=2, embedding_dim=256, num_codes=1024)


def transformer_preset(image_size: int) -> dict:
    return dict(codebook_size=1024, num_classes=NUM_CLASSES, seq_len=(image_size // 16) ** 2,
                hidden_size=768, num_layers=24, num_heads=16, intermediate_size=3072)


class CheckpointError(ValueError):
    """An official checkpoint file that cannot be read; the message names the file."""


def read(path: str | os.PathLike) -> dict:
    """The ``params`` tree (nested dicts of float32 NumPy arrays) of an official checkpoint file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        state = serialization.msgpack_restore(data)
    except Exception as e:  # msgpack raises several unrelated types on garbage
        raise CheckpointError(f"{path}: not a flax msgpack checkpoint ({type(e).__name__})") from None
    if not isinstance(state, dict) or set(state) != {"params"} or not isinstance(state["params"], dict):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: expected an official MaskGIT checkpoint {{'params': ...}}, "
                              f"got {keys}")
    return _as_float32(state["params"], path)


def _as_float32(tree: dict, path: Path, where: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{where}/{key}"
        if isinstance(value, dict):
            out[key] = _as_float32(value, path, name)
        elif isinstance(value, np.ndarray) and value.dtype == np.float32:
            out[key] = value
        else:
            raise CheckpointError(f"{path}: {name} is {type(value).__name__} "
                                  f"{getattr(value, 'dtype', '')}, expected a float32 array")
    return out


def tokenizer_architecture(params: dict, where: str) -> dict:
    """``OfficialVQGAN`` arguments read off a tokenizer's parameter shapes (the image size excluded).

    The decoder's plain convs are its input conv, one per upsampling and the output conv, so they
    give the number of levels; its ResBlocks are num_res_blocks per level plus num_res_blocks more.
    """
    try:
        codebook = params["quantizer"]["codebook"]
        encoder, decoder = params["encoder"], params["decoder"]
        levels = sum(1 for k in decoder if k.startswith("Conv_")) - 1
        blocks = sum(1 for k in encoder if k.startswith("ResBlock_"))
        per_level = blocks // (levels + 1)
        filters = encoder["Conv_0"]["kernel"].shape[-1]
        widths = [encoder[f"ResBlock_{i * per_level}"]["Conv_0"]["kernel"].shape[-1]
                  for i in range(levels)]
    except (KeyError, TypeError, AttributeError, IndexError, ZeroDivisionError):
        raise CheckpointError(f"{where}: not an official MaskGIT tokenizer (no quantizer/codebook, "
                              "encoder/ResBlock_*, decoder/Conv_*)") from None
    return dict(filters=int(filters), channel_multipliers=tuple(int(w // filters) for w in widths),
                num_res_blocks=int(per_level), embedding_dim=int(codebook.shape[1]),
                num_codes=int(codebook.shape[0]))


def transformer_architecture(params: dict, codebook_size: int, where: str) -> dict:
    """``OfficialTransformer`` arguments read off a transformer's parameter shapes."""
    try:
        embed = params["Embed_0"]
        vocab, hidden = embed["word_embeddings"]["embedding"].shape
        positions = embed["position_embeddings"]["embedding"].shape[0]
        layers = sum(1 for k in params if k.startswith("TransformerLayer_"))
        layer = params["TransformerLayer_0"]
        heads = layer["Attention_0"]["self_attention"]["query"]["kernel"].shape[1]
        intermediate = layer["Mlp_0"]["intermediate_output"]["kernel"].shape[1]
    except (KeyError, TypeError, AttributeError, IndexError, ValueError):
        raise CheckpointError(f"{where}: not an official MaskGIT transformer (no Embed_0, "
                              "TransformerLayer_0/...)") from None
    num_classes = int(vocab) - codebook_size - 1
    if num_classes < 1:
        raise CheckpointError(f"{where}: vocabulary of {vocab} leaves no class token for a "
                              f"codebook of {codebook_size}: not the tokenizer's transformer")
    return dict(codebook_size=codebook_size, num_classes=num_classes, seq_len=int(positions) - 1,
                hidden_size=int(hidden), num_layers=layers, num_heads=int(heads),
                intermediate_size=int(intermediate))


def find_pair(folder: Path) -> Optional[tuple[Path, Path]]:
    """(tokenizer file, transformer file) when ``folder`` holds an official pair (``PAIR_NAMES``)."""
    for tokenizer, transformer in PAIR_NAMES:
        if (folder / tokenizer).is_file() and (folder / transformer).is_file():
            return folder / tokenizer, folder / transformer
    return None


def load_pair(tokenizer_path: str | os.PathLike,
              transformer_path: str | os.PathLike) -> tuple[ModelConfig, dict]:
    """(config, params) of an official tokenizer and transformer file; the architecture and the
    image size (16 pixels per token) come from the parameter shapes."""
    tokenizer_params, transformer_params = read(tokenizer_path), read(transformer_path)
    tokenizer = tokenizer_architecture(tokenizer_params, str(tokenizer_path))
    transformer = transformer_architecture(transformer_params, tokenizer["num_codes"],
                                           str(transformer_path))
    latent = math.isqrt(transformer["seq_len"])
    if latent * latent != transformer["seq_len"]:
        raise CheckpointError(f"{transformer_path}: {transformer['seq_len']} image positions are "
                              "not a square grid")
    tokenizer["img_resolution"] = latent * 2 ** (len(tokenizer["channel_multipliers"]) - 1)
    config = ModelConfig(tokenizer=tokenizer, transformer=transformer, mean=(0.0, 0.0, 0.0),
                         std=(1.0, 1.0, 1.0), decoding=DECODING, architecture="official",
                         about=dict(ABOUT, tokenizer_file=Path(tokenizer_path).name,
                                    transformer_file=Path(transformer_path).name))
    return config, {"tokenizer": tokenizer_params, "transformer": transformer_params}
