"""Course PyTorch checkpoints -> a workdir that sample.py and train.py use directly.

    python -m maskgit_jax.convert_lab --vqgan VQGAN.pt --transformer ckpt.pt --out runs/lab

Reads the torch zip files without torch and without running code from them (`torch_zip`), infers the
architecture from the tensor shapes (the lab's sizes or smaller course-style models), maps the course
key names onto the flax parameters (`lab_import`) and writes DIR/config.json (the lab config,
`configs/lab.py`, with the inferred sizes) and orbax checkpoints at step 0 under
DIR/checkpoints/{tokenizer,transformer}/ in the layout `train.experiment` restores. Without
--transformer only the tokenizer is written: train a transformer on it with train.py.
"""

import math
from pathlib import Path
from typing import Optional

import jax
import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from maskgit_jax.lab_import.transformer import convert_transformer
from maskgit_jax.lab_import.vqgan import convert_vqgan
from maskgit_jax.lab_import.vqgan_layout import layer_list
from maskgit_jax.lab_import.weights import ConversionError, Weights
from maskgit_jax.train import experiment, mesh as mesh_lib

STEP = 0  # the converted weights are step 0: train.py continues (fine-tunes) from them


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


# The init runs once (for the discriminator and optimizer state around the converted weights):
# a quick compile matters, fast code does not (this cuts the compile time about 3x on a CPU).
_QUICK_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _save(workdir: Path, stage: str, config, init, **fields) -> None:
    """A freshly initialised train state of ``stage`` with ``fields`` replaced, saved at STEP."""
    state = jax.jit(init).lower().compile(_QUICK_COMPILE)().replace(**fields)
    ckpt = experiment.checkpoints(workdir, stage, config)
    ckpt.save(STEP, state)
    ckpt.close()


def convert(vqgan: str, out: str, config: ml_collections.ConfigDict,
            transformer: Optional[str] = None, heads: int = 16,
            image_size: Optional[int] = None) -> ml_collections.ConfigDict:
    """Converts the course checkpoints into the workdir ``out``; returns the config written there.

    vqgan / transformer: the course state_dict files (torch.save); heads: the transformer's attention
    heads (not stored in the weights; the lab's 16); image_size: pixels (default: implied by the
    transformer's token count, else 64). ``config``: the lab config (`configs/lab.py`); its model
    sizes are replaced by the inferred ones. Raises ConversionError (one line naming the file) for
    checkpoints that do not fit, and for an ``out`` that already holds checkpoints.
    """
    workdir = Path(out)
    if (workdir / "checkpoints").exists() and any((workdir / "checkpoints").iterdir()):
        raise ConversionError(f"{workdir}: already holds checkpoints; choose an empty --out")
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
        # The course's transformer has no predicted-token flag, so fine-tuning it cannot train one.
        config.transformer_model.predicted_embedding = False
        config.transformer.self_condition = 0.0
    experiment.save_config(config, workdir)

    sharding = mesh_lib.replicated(mesh_lib.make_mesh())
    init, _ = experiment.tokenizer_init(config, sharding)
    _save(workdir, "tokenizer", config, init, params=vq_params)
    if tr_params is not None:
        init, _ = experiment.transformer_init(config, sharding)
        ema = jax.eval_shape(init).ema_params
        _save(workdir, "transformer", config, init, params=tr_params,
              ema_params=None if ema is None else tr_params)
    return config


_CONFIG = config_flags.DEFINE_config_file("config", "configs/lab.py", "Config written to the workdir.")
_VQGAN = flags.DEFINE_string("vqgan", None, "The course tokenizer state_dict (VQGAN.pt).", required=True)
_TRANSFORMER = flags.DEFINE_string("transformer", None, "The course transformer state_dict "
                                   "(optional: without it only the tokenizer is converted).")
_OUT = flags.DEFINE_string("out", None, "The workdir to write (must hold no checkpoints).", required=True)
_HEADS = flags.DEFINE_integer("heads", 16, "Attention heads of the transformer (not in the weights).")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", None, "Image side in pixels (default: from the "
                                   "transformer's token count, else 64).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    try:
        config = convert(_VQGAN.value, _OUT.value, _CONFIG.value, _TRANSFORMER.value, _HEADS.value,
                         _IMAGE_SIZE.value)
    except ConversionError as e:
        raise SystemExit(f"convert_lab: {e}") from None
    v, t = config.vqgan, config.transformer_model
    print(f"tokenizer: {v.num_codes} codes of {v.latent_dim}, {v.img_resolution}x{v.img_resolution} "
          f"images -> {_OUT.value}/checkpoints/tokenizer")
    if _TRANSFORMER.value is None:
        print("no --transformer: sample.py needs one; train it with "
              f"python train.py --config=configs/lab.py --workdir={_OUT.value} "
              "--config.data.source=LAB_DATASET (or convert again with --transformer)")
        return
    print(f"transformer: {t.depth} blocks of width {t.dim}, {t.heads} heads -> "
          f"{_OUT.value}/checkpoints/transformer")
    print(f"next: python sample.py --workdir={_OUT.value} --input=LAB_TEST_DIR")


if __name__ == "__main__":
    app.run(main)
