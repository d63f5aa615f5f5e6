"""MaskGIT on real 64x64 images (emoji on white), sized for a 2-core CPU in well under 90 min.

    python train.py --config=configs/emoji.py --workdir=runs/emoji
    python sample.py --workdir=runs/emoji --input=emoji64/test --fid

The data is emoji64, shipped with the package (maskgit_jax/data/emoji64/: Twemoji, CC-BY 4.0):
these commands need no data folder, from a checkout or a pip install. Training reads its train
split (2,761 images) and holds out its val split (210); emoji64/test is the 400-image test set.

The `small` faces model (8x8 tokens of 8x8 pixels, a 4-block transformer) trained longer: real images
need more tokenizer steps than the procedural faces, and 2.8k training images need dropout.
"""

import ml_collections

from maskgit_jax.configs import faces


def get_config(arg: str = "") -> ml_collections.ConfigDict:
    if arg not in ("", "tiny"):
        raise ValueError(f"configs/emoji.py: unknown variant {arg!r}; use no argument or tiny")
    c = faces.get_config("tiny" if arg == "tiny" else "small")
    c.data.source = "emoji64"       # the shipped set (or a folder ./emoji64): --config.data.source=PATH
    c.data.train_split = "train"    # split of data.source read for training (train.npz or train/)
    c.data.num_train = 0            # images: 0 = every image of the split
    if arg == "tiny":
        return c
    c.tokenizer.update(steps=800, warmup_steps=50)        # updates of 32 images
    c.tokenizer.restart_dead_codes_every = 100            # updates between dead-code restarts
    c.transformer_model.dropout = 0.1                      # 2.8k images (5.5k with mirrors) overfit
    # The recipe the emoji results were measured with (bench/RESULTS.md), not the faces' newer one.
    c.transformer_model.predicted_embedding = False
    c.transformer.update(steps=1500, warmup_steps=100, batch_size=64, schedule="cosine",
                         self_condition=0.0)                # updates of 64 token sequences
    c.log_every, c.checkpoint_every, c.sample_every = 50, 500, 1000  # updates
    return c
