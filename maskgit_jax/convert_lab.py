"""Course PyTorch checkpoints -> an exported model that MaskGIT, sample.py and train.py use directly.

    python -m maskgit_jax.convert_lab --vqgan VQGAN.pt --transformer ckpt.pt --out models/lab

Reads the torch zip files without torch and without running code from them (`torch_zip`), infers the
architecture from the tensor shapes (the lab's sizes or smaller course-style models), maps the course
key names onto the flax parameters (`lab_import`) and writes an exported model folder (config.json
with the lab's normalisation and decoding protocol, `configs/lab.py`, and params.msgpack). Without
--transformer only the tokenizer is written: train a transformer on it with
``train.py --config=configs/lab.py --config.init_from=DIR``.
"""

import math
import sys
from pathlib import Path
from typing import Optional

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from maskgit_jax import configs, model_config, model_files
from maskgit_jax.cli import boundary
from maskgit_jax.lab_import.transformer import convert_transformer
from maskgit_jax.lab_import.vqgan import convert_vqgan
from maskgit_jax.lab_import.vqgan_layout import layer_list
from maskgit_jax.lab_import.weights import ConversionError, Weights


def _image_size(vq_weights: Weights, tr_config: Optional[dict], image_size: Optional[int]) -> int:
    """The given size, else the one the transformer's token count implies, else the lab's 64."""
    if image_size is not None:
        return image_size
    if tr_config is None:
        return 64
    grid = math.isqrt(tr_config["seq_len"])
    downs = sum(spec.kind == "down" for spec in layer_list(vq_weights, "encoder"))
    return grid * 2 ** downs


def _check_pair(vq_config: dict, tr_config: dict, vq_path: str, tr_path: str) -> None:
    grid = vq_config["img_resolution"] // 2 ** len(vq_config["enc_downsample_levels"])
    if tr_config["num_codes"] != vq_config["num_codes"] or tr_config["seq_len"] != grid * grid:
        raise ConversionError(
            f"{tr_path}: does not fit {vq_path}: the transformer has {tr_config['num_codes']} codes "
            f"and {tr_config['seq_len']} positions, the VQGAN {vq_config['num_codes']} codes and "
            f"{grid}x{grid} tokens at {vq_config['img_resolution']}x{vq_config['img_resolution']} pixels")


def convert(vqgan: str, out: str, config: ml_collections.ConfigDict,
            transformer: Optional[str] = None, heads: int = 16,
            image_size: Optional[int] = None, overwrite: bool = False) -> model_config.ModelConfig:
    """Converts the course checkpoints into the exported model folder ``out``; returns its config.

    vqgan / transformer: the course state_dict files (torch.save); heads: the transformer's attention
    heads (not stored in the weights; the lab's 16); image_size: pixels (default: implied by the
    transformer's token count, else 64). ``config``: the lab config (`configs/lab.py`): its
    normalisation and decoding protocol go with the model; its model sizes are replaced by the
    inferred ones. Raises ConversionError (one line naming the file) for checkpoints that do not fit,
    and ModelFileError for an ``out`` that is a file, a workdir, holds a foreign config.json or
    params.msgpack, or holds a model (unless ``overwrite``).
    """
    folder = Path(out)
    model_files.check_destination(folder, overwrite)  # before the slow conversion
    vq_weights = Weights.read(vqgan)
    tr_config = tr_params = None
    if transformer is not None:
        tr_config, tr_params = convert_transformer(Weights.read(transformer), heads)
    vq_config, vq_params = convert_vqgan(vq_weights, _image_size(vq_weights, tr_config, image_size))
    if tr_config is not None:
        _check_pair(vq_config, tr_config, str(vqgan), str(transformer))

    config = ml_collections.ConfigDict(config.to_dict())
    config.vqgan = ml_collections.ConfigDict(vq_config)
    config.data.image_size = vq_config["img_resolution"]
    if tr_config is not None:
        config.transformer_model.update({k: v for k, v in tr_config.items()
                                         if k not in ("num_codes", "seq_len")})
        # The course's transformer has no predicted-token flag.
        config.transformer_model.predicted_embedding = False
    about = {"source": "converted from the course's PyTorch checkpoints",
             "vqgan": str(vqgan), **({"transformer": str(transformer)} if transformer else {})}
    model = model_config.from_training_config(config, with_transformer=tr_params is not None,
                                              about=about)
    params = {"tokenizer": vq_params, **({"transformer": tr_params} if tr_params is not None else {})}
    model_files.save(folder, model, params, overwrite)
    return model


_CONFIG = config_flags.DEFINE_config_file(
    "config", str(Path(configs.__file__).with_name("lab.py")),
    "The protocol (normalisation, decoding defaults) that goes with the model.")
_VQGAN = flags.DEFINE_string("vqgan", None, "The course tokenizer state_dict (VQGAN.pt).", required=True)
_TRANSFORMER = flags.DEFINE_string("transformer", None, "The course transformer state_dict "
                                   "(optional: without it only the tokenizer is converted).")
_OUT = flags.DEFINE_string("out", None, "The model folder to write (new, empty, or holding an earlier "
                           "converted or exported model with --overwrite).", required=True)
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace the model already in --out.")
_HEADS = flags.DEFINE_integer("heads", 16, "Attention heads of the transformer (not in the weights).")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", None, "Image side in pixels (default: from the "
                                   "transformer's token count, else 64).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    config = convert(_VQGAN.value, _OUT.value, _CONFIG.value, _TRANSFORMER.value, _HEADS.value,
                     _IMAGE_SIZE.value, _OVERWRITE.value)
    v = config.tokenizer
    print(f"tokenizer: {v['num_codes']} codes of {v['latent_dim']}, {v['img_resolution']}x"
          f"{v['img_resolution']} images -> {_OUT.value}")
    if config.transformer is None:
        print("no --transformer: inpainting needs one; train it with python train.py "
              f"--config=configs/lab.py --config.init_from={_OUT.value} --workdir=runs/lab "
              "--config.data.source=LAB_DATASET (or convert again with --transformer)")
        return
    t = config.transformer
    print(f"transformer: {t['depth']} blocks of width {t['dim']}, {t['heads']} heads -> {_OUT.value}")
    print(f"next: python sample.py --model={_OUT.value} --input=LAB_TEST_DIR")


def run():
    """The ``maskgit-convert-lab`` console script."""
    boundary.run(main, configs.resolve_config_flag(sys.argv))


if __name__ == "__main__":
    run()
