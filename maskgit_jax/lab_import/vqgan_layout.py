"""The VQGAN constructor arguments of a course-style state_dict, read off its keys and shapes.

Each ``encoder.model.{i}`` / ``decoder.model.{i}`` index is classified by its keys (``block.*``: a
ResidualBlock, ``q.*``: NonLocal, ``conv.*``: Down/Up, ``gn.*``: GroupNorm, ``weight``: a conv, no
keys: the parameter-free swish) with widths from the tensor shapes. The layer list is then split
into levels and turned into `models.vqgan.VQGAN` arguments, which are accepted only if
`encoder_layers` / `decoder_layers` rebuild exactly the same list: a layout the flax VQGAN cannot
express is an error, never a silently different model. The lab's `VQGAN.pt` gives exactly
`lab_vqgan_config()`; narrower or shallower course-style models convert as well.
"""

import re

from maskgit_jax.lab_import.weights import Weights
from maskgit_jax.models import vqgan as vq

COURSE_GROUPS = 32  # the course's GroupNorm(32) everywhere


def _width(weights: Weights, prefix: str, options: list[tuple[str, int]]) -> int:
    """The size of axis ``axis`` of the first existing key among ``options`` (suffixes of prefix)."""
    for suffix, axis in options:
        shape = weights.shape(prefix + suffix)
        if shape is not None and len(shape) > axis:
            return shape[axis]
    raise weights.fail(f"cannot tell the width of {prefix.rstrip('.')}: none of "
                       f"{[prefix + s for s, _ in options]} is in the file")


def _layer(weights: Weights, prefix: str, subkeys: list[str], previous: int, part: str) -> vq.LayerSpec:
    """Classifies the torch layer at ``prefix`` ('encoder.model.7.') from its key suffixes."""
    heads = {k.split(".")[0] for k in subkeys}
    if "block" in heads or "channel_up" in heads:
        cin = _width(weights, prefix, [("block.0.gn.weight", 0), ("block.2.weight", 1),
                                       ("channel_up.weight", 1)])
        cout = _width(weights, prefix, [("block.2.weight", 0), ("block.3.gn.weight", 0),
                                        ("block.5.weight", 0)])
        return vq.LayerSpec("res", cin, cout)
    if heads & {"q", "k", "v", "proj_out", "norm"}:
        c = _width(weights, prefix, [("q.weight", 0), ("proj_out.weight", 0), ("norm.gn.weight", 0)])
        return vq.LayerSpec("nonlocal", c, c)
    if heads == {"conv"}:
        c = _width(weights, prefix, [("conv.weight", 0), ("conv.bias", 0)])
        return vq.LayerSpec("down" if part == "encoder" else "up", c, c)
    if heads == {"gn"}:
        c = _width(weights, prefix, [("gn.weight", 0), ("gn.bias", 0)])
        return vq.LayerSpec("groupnorm", c, c)
    if heads <= {"weight", "bias"}:
        cout = _width(weights, prefix, [("weight", 0), ("bias", 0)])
        cin = _width(weights, prefix, [("weight", 1)]) if "weight" in heads else previous
        return vq.LayerSpec("conv", cin, cout)
    raise weights.fail(f"cannot tell what layer {prefix.rstrip('.')} is from its keys {sorted(subkeys)}")


def layer_list(weights: Weights, part: str) -> list[vq.LayerSpec]:
    """The layers of ``part`` ('encoder' or 'decoder') in torch index order; a missing index is swish."""
    pattern = re.compile(rf"^{part}\.model\.(\d+)\.")
    by_index: dict[int, list[str]] = {}
    for key in weights.arrays:
        m = pattern.match(key)
        if m:
            by_index.setdefault(int(m.group(1)), []).append(key[m.end():])
    if not by_index:
        raise weights.fail(f"no {part}.model.* keys: not a course VQGAN state_dict")
    layers, width = [], 0
    for i in range(max(by_index) + 1):
        if i in by_index:
            spec = _layer(weights, f"{part}.model.{i}.", by_index[i], width, part)
        else:
            spec = vq.LayerSpec("swish", width, width)
        layers.append(spec)
        width = spec.out_channels
    return layers


def _split_levels(body: list[vq.LayerSpec], blocks: int, resample: str):
    """[(width, attention, resampled)] for levels of ``blocks`` ResidualBlocks (each optionally followed
    by NonLocal, all or none), each level optionally followed by a ``resample`` layer; None if the body
    does not split that way."""
    levels, i = [], 0
    while i < len(body):
        attention = []
        for _ in range(blocks):
            if i >= len(body) or body[i].kind != "res":
                return None
            width = body[i].out_channels
            i += 1
            attention.append(i < len(body) and body[i].kind == "nonlocal")
            i += attention[-1]
        if len(set(attention)) != 1:
            return None
        resampled = i < len(body) and body[i].kind == resample
        i += resampled
        levels.append((width, attention[0], resampled))
    return levels


def _attention_resolutions(levels, resolution: int, scale: float) -> set[int]:
    """The resolutions of the levels with NonLocal blocks; each resampled level scales the resolution."""
    found = set()
    for _, attention, resampled in levels:
        if attention:
            found.add(resolution)
        if resampled:
            resolution = int(resolution * scale)
    return found


def _res_block_counts(body: list[vq.LayerSpec]) -> list[int]:
    """Candidate blocks-per-level counts, fewest levels first."""
    total = sum(spec.kind == "res" for spec in body)
    return [n for n in range(total, 0, -1) if total % n == 0]


def _encoder_candidates(layers, image_size):
    """(kwargs, attention resolutions) of every level split of the encoder's layer list."""
    kinds = [s.kind for s in layers]
    if len(layers) < 6 or kinds[0] != "conv" or kinds[-3:] != ["groupnorm", "swish", "conv"]:
        return
    mid_attention = kinds[-5] == "nonlocal"
    body = layers[1:-6 if mid_attention else -5]
    for blocks in _res_block_counts(body):
        levels = _split_levels(body, blocks, "down")
        if levels is None:
            continue
        attn = _attention_resolutions(levels, image_size, 0.5)
        yield dict(image_channels=layers[0].in_channels,
                   enc_channels=(layers[0].out_channels,) + tuple(w for w, _, _ in levels),
                   enc_num_res_blocks=blocks,
                   enc_downsample_levels=tuple(i for i, lv in enumerate(levels) if lv[2]),
                   mid_attention=mid_attention, latent_dim=layers[-1].out_channels), attn


def _decoder_candidates(layers, latent_resolution):
    """(kwargs, attention resolutions) of every level split of the decoder's layer list."""
    kinds = [s.kind for s in layers]
    if len(layers) < 5 or kinds[0] != "conv" or kinds[-2:] != ["groupnorm", "conv"]:
        return
    mid_attention = kinds[2] == "nonlocal"
    body = layers[4 if mid_attention else 3:-2]
    for blocks in _res_block_counts(body):
        levels = _split_levels(body, blocks, "up")
        if levels is None:
            continue
        attn = _attention_resolutions(levels, latent_resolution, 2)
        # mid_attention is shared with the encoder: a mismatch fails the rebuild check.
        yield dict(dec_channels=tuple(w for w, _, _ in levels)[::-1], dec_num_res_blocks=blocks,
                   dec_upsample_levels=tuple(i for i, lv in enumerate(levels) if lv[2])), attn


def _rebuilds(config: dict, encoder, decoder) -> bool:
    """Whether ``config`` gives exactly these encoder and decoder layer lists."""
    c = vq.make_vqgan(config)
    enc = vq.encoder_layers(c.image_channels, c.enc_channels, c.enc_num_res_blocks,
                            c.enc_downsample_levels, c.attn_resolutions, c.mid_attention,
                            c.img_resolution, c.latent_dim)
    dec = vq.decoder_layers(c.image_channels, c.dec_channels, c.dec_num_res_blocks,
                            c.dec_upsample_levels, c.attn_resolutions, c.mid_attention,
                            c.latent_resolution, c.latent_dim)
    return enc == encoder and dec == decoder


def _check_group_norms(weights: Weights, config: dict) -> None:
    """The course normalises with 32 groups; the flax VQGAN picks its group count from the width."""
    widths = set(config["enc_channels"]) | set(config["dec_channels"])
    odd = sorted(c for c in widths if vq.num_groups_for(c) != COURSE_GROUPS)
    if odd:
        raise weights.fail(
            f"GroupNorm over {odd} channels: the course uses {COURSE_GROUPS} groups, maskgit_jax's VQGAN "
            f"uses {[vq.num_groups_for(c) for c in odd]} for these widths, so the outputs would differ; "
            f"only widths that are multiples of {COURSE_GROUPS} and >= {4 * COURSE_GROUPS} convert exactly")


def _search(encoder, decoder, image_size: int, latent_resolution: int):
    """The first config (fewest levels first) that rebuilds both layer lists, or None."""
    for enc, enc_attn in _encoder_candidates(encoder, image_size):
        for dec, dec_attn in _decoder_candidates(decoder, latent_resolution):
            candidate = dict(vq.lab_vqgan_config(), **enc, **dec, img_resolution=image_size,
                             attn_resolutions=tuple(sorted(enc_attn | dec_attn)))
            if _rebuilds(candidate, encoder, decoder):
                return candidate
    return None


def infer_vqgan_config(weights: Weights, image_size: int = 64) -> dict:
    """`VQGAN` constructor kwargs reproducing the course-style model in ``weights`` at ``image_size``."""
    encoder, decoder = layer_list(weights, "encoder"), layer_list(weights, "decoder")
    num_codes = _width(weights, "codebook.", [("embedding.weight", 0)])
    downs = sum(s.kind == "down" for s in encoder)
    if image_size % 2 ** downs:
        raise weights.fail(f"image size {image_size} is not divisible by 2^{downs} (the encoder "
                           f"downsamples {downs} times)")
    lab = vq.lab_vqgan_config()
    if image_size == lab["img_resolution"] and _rebuilds(lab, encoder, decoder):
        config = lab
    else:
        config = _search(encoder, decoder, image_size, image_size // 2 ** downs)
        if config is None:
            raise weights.fail(
                "its encoder.model / decoder.model layer sequence does not follow the course layout "
                "(conv, levels of residual blocks with optional attention and down/upsampling, "
                "middle block, GroupNorm, conv); encoder: "
                + " ".join(s.kind for s in encoder) + "; decoder: " + " ".join(s.kind for s in decoder))
    config = dict(config, num_codes=num_codes)
    _check_group_norms(weights, config)
    return config
