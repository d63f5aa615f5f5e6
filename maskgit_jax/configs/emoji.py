"""MaskGIT on real 64x64 images (emoji on white), sized for a 2-core CPU.

    python train.py --config=configs/emoji.py --workdir=runs/emoji          # the shipped emoji-small
    python train.py --config=configs/emoji.py:quick --workdir=runs/emoji_q  # ~30 min, 8x8 tokens
    mkdir -p runs/emoji_c/checkpoints && cp -r runs/emoji/checkpoints/tokenizer runs/emoji_c/checkpoints/
    python train.py --config=configs/emoji.py:course --workdir=runs/emoji_c  # stage 2 the course's way
    python sample.py --workdir=runs/emoji --input=emoji64/test --fid

The data is emoji64, shipped with the package (maskgit_jax/data/emoji64/: Twemoji, CC-BY 4.0):
these commands need no data folder, from a checkout or a pip install. Training reads its train
split (2,761 images) and holds out its val split (210); emoji64/test is the 400-image test set.

Variants (each measured in bench/RESULTS.md, "emoji64: the recipe"):
- "" (default): the recipe of the shipped `emoji-small`: a 16x16 grid of 4x4-pixel tokens (a token
  over a hole's border wastes 16 known pixels, not 64), 512 codes, a wider tokenizer trained longer;
  a 4-block transformer with inpainting-shaped training masks, self-conditioning and an EMA.
- "quick": the first emoji recipe (the small faces model, 8x8 tokens of 8x8 pixels; ~30 minutes).
- "course": the default's architecture with the stage-2 recipe of the PyTorch course code
  (AdamW 1e-4, betas (0.9, 0.96), weight decay 0.05, cosine masking of uniformly random tokens,
  cross-entropy on the masked tokens, no label smoothing, inpainting masks, self-conditioning or EMA).
- "tiny": seconds, for tests.
"""

import ml_collections

from maskgit_jax.configs import faces

VARIANTS = ("", "quick", "course", "tiny")


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    if arg not in VARIANTS:
        raise ValueError(f"configs/emoji.py: unknown variant {arg!r}; use no argument, quick, course "
                         "or tiny")
    c = faces.get_config("tiny" if arg == "tiny" else "small")
    c.data.source = "emoji64"       # the shipped set (or a folder ./emoji64): --config.data.source=PATH
    c.data.train_split = "train"    # split of data.source read for training (train.npz or train/)
    c.data.num_train = 0            # images: 0 = every image of the split
    if arg == "tiny":
        return c
    if arg == "quick":
        _quick(c)
        return c
    _recipe(c)
    if arg == "course":
        _course(c)
    return c


def _quick(c):
    """The first emoji recipe (bench/RESULTS.md, 2026-11-21): the small faces model trained longer."""
    c.tokenizer.update(steps=800, warmup_steps=50)        # updates of 32 images
    c.tokenizer.restart_dead_codes_every = 100            # updates between dead-code restarts
    c.transformer_model.dropout = 0.1                      # 2.8k images (5.5k with mirrors) overfit
    c.transformer_model.predicted_embedding = False
    c.transformer.update(steps=1500, warmup_steps=100, batch_size=64, schedule="cosine",
                         self_condition=0.0)                # updates of 64 token sequences
    c.log_every, c.checkpoint_every, c.sample_every = 50, 500, 1000  # updates


def _recipe(c):
    """The shipped emoji-small's recipe (hours on a 2-core CPU): faces.py:small16's."""
    faces.small16(c)


def _course(c):
    """Stage 2 as the PyTorch course trains it (bench/torch_loops.py writes its step out)."""
    c.stages = "transformer"        # on the default recipe's tokenizer, copied into the workdir
    c.transformer_model.predicted_embedding = False
    c.transformer.update(lr=1e-4, warmup_steps=0, weight_decay=0.05, b1=0.9, b2=0.96,
                         label_smoothing=0.0, blob_prob=0.0, schedule="cosine", self_condition=0.0,
                         ema_decay=0.0)
