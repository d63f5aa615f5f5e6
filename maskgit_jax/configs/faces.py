"""MaskGIT on 64x64 faces: the lab-scale model, and smaller variants for the CPU and the tests.

    python train.py --config=configs/faces.py            # lab scale (GPU/TPU)
    python train.py --config=configs/faces.py:small      # minutes on a 2-core CPU (the README main job)
    python train.py --config=configs/faces.py:small16    # hours on a 2-core CPU (the shipped models' recipe)
    python train.py --config=configs/faces.py:tiny       # seconds: tests and smoke runs

Any field can be overridden: --config.transformer.batch_size=64 --config.data.source=/data/faces.
"""

import ml_collections

from maskgit_jax.models.transformer import lab_transformer_config
from maskgit_jax.models.vqgan import lab_vqgan_config

VARIANTS = ("lab", "small", "small16", "tiny")


def get_config(arg: str = "lab") -> ml_collections.ConfigDict:
    if arg not in VARIANTS:
        raise ValueError(f"configs/faces.py: unknown variant {arg!r}; use lab, small, small16 or tiny")
    c = ml_collections.ConfigDict()
    c.seed = 0                      # everything random (data order, masks, init) derives from it
    c.stages = "tokenizer,transformer"  # comma-separated stages to train, in order
    c.compute_dtype = "float32"     # activations: "bfloat16" on GPU/TPU; parameters stay float32
    c.init_from = ""                # an exported model (folder or shipped name) to start from: its
                                    # architecture and parameters; "" = train from scratch

    c.data = ml_collections.ConfigDict()
    c.data.source = "faces"         # "faces" (built-in), an image folder, or "tfds:NAME"
    c.data.train_split = "train"    # sub-folder / TFDS split for training
    c.data.num_train = 20000        # images (for "faces": how many to render; else a cap, 0 = all)
    c.data.image_size = 64          # pixels, square
    c.data.mean = (0.5, 0.5, 0.5)   # per-channel normalisation of [0, 1] pixels
    c.data.std = (0.5, 0.5, 0.5)
    c.data.num_eval = 64            # held-out images (sources.load_held_out; never trained on) with
                                    # brush masks: the sample grids and the validation loss

    # Stage 1: the VQGAN tokenizer (constructor arguments of models.vqgan.VQGAN).
    c.vqgan = ml_collections.ConfigDict(lab_vqgan_config())
    c.tokenizer = ml_collections.ConfigDict()
    c.tokenizer.steps = 20000       # optimizer updates
    c.tokenizer.batch_size = 64     # images per update, global over all devices
    c.tokenizer.lr = 2e-4           # peak learning rate
    c.tokenizer.warmup_steps = 500  # linear warm-up updates
    c.tokenizer.weight_decay = 0.0
    c.tokenizer.b1, c.tokenizer.b2 = 0.5, 0.9
    c.tokenizer.grad_clip = 1.0     # global gradient norm; 0 disables
    c.tokenizer.l1_weight = 1.0     # reconstruction loss weights
    c.tokenizer.l2_weight = 1.0
    c.tokenizer.hflip = True        # mirror images left-right with probability 1/2 (input pipeline)
    c.tokenizer.disc_weight = 0.1   # patch-GAN generator loss weight; 0 disables the discriminator
    c.tokenizer.disc_start = 5000   # update from which the GAN loss is on
    c.tokenizer.disc_channels = 64  # discriminator base width
    c.tokenizer.disc_layers = 3
    c.tokenizer.restart_dead_codes_every = 1000  # updates between dead-code restarts; 0 = never

    # Stage 2: the bidirectional transformer (models.transformer.BidirectionalTransformer).
    c.transformer_model = ml_collections.ConfigDict(lab_transformer_config())
    del c.transformer_model.num_codes, c.transformer_model.seq_len  # taken from the tokenizer
    c.transformer_model.predicted_embedding = False  # input flag for the decoder's own guesses
    c.transformer = ml_collections.ConfigDict()
    c.transformer.steps = 50000
    c.transformer.batch_size = 128
    c.transformer.grad_accum = 1    # micro-batches per update (same update, less memory)
    c.transformer.lr = 4e-4
    c.transformer.warmup_steps = 2000
    c.transformer.weight_decay = 0.05
    c.transformer.b1, c.transformer.b2 = 0.9, 0.96
    c.transformer.grad_clip = 1.0
    c.transformer.ema_decay = 0.0   # EMA of parameters (e.g. 0.999, warmed up: optim.ema_decay_at); 0 disables
    c.transformer.sample_ema = True  # sample grids and WORKDIR/model use the EMA parameters (when
                                    # ema_decay > 0); False: the raw ones
    c.transformer.label_smoothing = 0.1
    c.transformer.code_smoothing = 0.0  # > 0: targets spread over near-duplicate codes by a kernel of
                                    # this width (fraction of the median squared code distance)
    c.transformer.loss_on = "masked"  # "masked" tokens only, or "all"
    c.transformer.schedule = "cosine"  # gamma used to draw how many tokens to mask
    c.transformer.blob_prob = 0.3   # fraction of examples with inpainting-shaped (blob) masks
    c.transformer.self_condition = 0.0  # fraction of examples with part of the masked tokens filled by
                                    # the model's own guesses (needs transformer_model.predicted_embedding)
    c.transformer.cache_flips = True  # token cache holds each image and its mirror
    c.transformer.cache_shifts = 0  # copies of each cached image moved by a random offset (0: none)
    c.transformer.cache_max_shift = 8  # pixels: largest move of a shifted copy, each axis (edges
                                    # repeated into the uncovered border)

    # Decoding for the sample grids written during training (sample.py has its own flags).
    c.sample = ml_collections.ConfigDict()
    c.sample.schedule = "square"
    c.sample.total_iter = 8
    c.sample.choice_temperature = 4.5
    c.sample.pixel_feedback = True  # tokens over partly known patches re-encoded with those pixels

    c.log_every = 50                # updates between metric rows
    c.checkpoint_every = 1000       # updates between checkpoints
    c.sample_every = 2000           # updates between sample grids
    c.keep_checkpoints = 3

    if arg == "small":
        _small(c)
    elif arg == "small16":
        _small(c)
        small16(c)
        c.data.num_train = 20000    # procedural faces are free: more of them, less overfitting
    elif arg == "tiny":
        _tiny(c)
    return c


def _small(c):
    """A few minutes per stage on a 2-core CPU: 8x8 tokens of 8x8 pixels, a narrow transformer."""
    c.data.num_train = 8000
    c.vqgan.update(enc_channels=(16, 16, 32, 64), dec_channels=(16, 32, 64), enc_num_res_blocks=1,
                   dec_num_res_blocks=1, enc_downsample_levels=(0, 1, 2),
                   dec_upsample_levels=(0, 1, 2), attn_resolutions=(), mid_attention=False,
                   latent_dim=32, num_codes=256)
    c.tokenizer.update(steps=500, batch_size=32, lr=2e-3, warmup_steps=20, disc_weight=0.0,
                       restart_dead_codes_every=50)
    c.transformer_model.update(dim=128, depth=4, heads=4, mlp_dim=256, dropout=0.0, ln_eps=1e-6,
                               predicted_embedding=True)
    # Inpainting masks 17-66% of the tokens: "linear" spends fewer examples on near-empty inputs
    # than "cosine"; small batches and more updates learn more per CPU-second; self-conditioning
    # keeps T > 1 decoding from trusting its own guesses (bench/RESULTS.md, "T=8 against T=1").
    c.transformer.update(steps=1500, batch_size=32, lr=1e-3, warmup_steps=50, weight_decay=0.01,
                         label_smoothing=0.0, blob_prob=0.5, schedule="linear", self_condition=0.5)
    c.log_every, c.checkpoint_every, c.sample_every = 25, 250, 500


def small16(c):
    """The recipe of the shipped emoji-small and faces-small (hours on a 2-core CPU; bench/RESULTS.md,
    "emoji64: a recipe for emoji-small"): 16x16 tokens of 4x4 pixels, a wider tokenizer trained longer, a 4-block
    transformer with inpainting-shaped masks, self-conditioning and an EMA. Applied on top of
    ``_small`` (configs/emoji.py uses it too)."""
    # Tokenizer: 16x16 tokens of 4x4 pixels (two downsamplings), 512 codes of 32 dimensions: a token
    # over a hole's border wastes 16 known pixels, not 64.
    c.vqgan.update(enc_channels=(32, 32, 64), dec_channels=(32, 64), enc_num_res_blocks=1,
                   dec_num_res_blocks=1, enc_downsample_levels=(0, 1), dec_upsample_levels=(0, 1),
                   attn_resolutions=(), mid_attention=False, latent_dim=32, num_codes=512)
    # 2,000 updates: the emoji ceiling (true tokens decoded) is 27.1 dB there and 27.7 dB at 3,000;
    # the transformer, not the tokenizer, limits the fills, so the time goes to stage 2.
    c.tokenizer.update(steps=2000, batch_size=32, lr=2e-3, warmup_steps=50,  # updates of 32 images
                       restart_dead_codes_every=100)       # updates between dead-code restarts
    # Transformer over the 256 tokens: 4 blocks of width 128.
    c.transformer_model.update(dim=128, depth=4, heads=4, mlp_dim=512, dropout=0.1,
                               predicted_embedding=True)
    c.transformer.update(steps=2500, batch_size=32, lr=1e-3, warmup_steps=100, weight_decay=0.01,
                         label_smoothing=0.0, blob_prob=0.5, schedule="linear", self_condition=0.5,
                         ema_decay=0.999)                   # updates of 32 token sequences
    # Decoding: fix the code with the most probability around it (bench/RESULTS.md, "Which code to
    # fix"): kernel width, a fraction of the median squared distance between codes.
    c.sample.code_kernel = 0.125
    # The fill meets the known pixels without a seam (bench/RESULTS.md, "Seamless compositing").
    c.sample.composite = "seamless"
    c.log_every, c.checkpoint_every, c.sample_every = 50, 250, 1000  # updates
    c.keep_checkpoints = 20


def _tiny(c):
    """Seconds: shape-true but minute models for tests and smoke runs of every code path."""
    c.data.num_train, c.data.num_eval = 64, 8
    c.vqgan.update(enc_channels=(8, 8, 16), dec_channels=(8, 16), enc_num_res_blocks=1,
                   dec_num_res_blocks=1, enc_downsample_levels=(0, 1), dec_upsample_levels=(0, 1),
                   attn_resolutions=(16,), mid_attention=True, latent_dim=8, num_codes=32)
    c.tokenizer.update(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, disc_start=2,
                       disc_channels=8, disc_layers=2, restart_dead_codes_every=2)
    c.transformer_model.update(dim=16, depth=1, heads=2, mlp_dim=32, dropout=0.1, ln_eps=1e-6,
                               predicted_embedding=True)
    c.transformer.update(steps=4, batch_size=8, lr=1e-3, warmup_steps=1, ema_decay=0.9,
                         grad_accum=2, self_condition=0.5)
    c.sample.total_iter = 3
    c.log_every, c.checkpoint_every, c.sample_every = 1, 2, 4
