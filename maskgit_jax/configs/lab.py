"""The PyTorch course's inpainting lab ("MaskGIT for Image Inpainting", NYCU): its models and protocol.

    python -m maskgit_jax.convert_lab --vqgan VQGAN.pt --out models/lab_vqgan
    python train.py --config=configs/lab.py --config.init_from=models/lab_vqgan --workdir=runs/lab \
        --config.data.source=/data/lab                # stage 2 on the course's tokenizer
    python sample.py --model=runs/lab --input=lab_test --total_iter=8
    python -m maskgit_jax.convert_lab --vqgan VQGAN.pt --transformer ckpt.pt --out models/lab

The faces config (`configs/faces.py`, same variants: lab, small, tiny) with the lab's protocol on top:
its normalisation statistics (train/val for training; the test images' own for inpainting, whose
outputs are de-normalised with them too), the course's decoding (cosine gamma, confidence =
probability + Gumbel noise scaled by 4.5 * (1 - t/T)) and no compositing: the whole decoded image is
the output, written as image_XXX.png. A token is masked when any pixel of its 4x4 patch is missing
(sample.py --dilate=0, the default).
"""

import ml_collections
from ml_collections import config_dict

from maskgit_jax.configs import faces


def get_config(arg: str = "lab") -> ml_collections.ConfigDict:
    c = faces.get_config(arg)
    # The course ships the tokenizer (VQGAN.pt, converted with maskgit_jax.convert_lab and given as
    # --config.init_from=DIR): train stage 2.
    c.stages = "transformer"
    c.data.source = "faces"         # the lab's dataset folder (its train/ images): --config.data.source=PATH
    c.data.mean = (0.4816, 0.4324, 0.3845)   # per-channel mean of [0, 1] pixels, lab train/val images
    c.data.std = (0.2602, 0.2518, 0.2537)    # per-channel std of [0, 1] pixels, lab train/val images
    c.data.test_mean = (0.4868, 0.4341, 0.3844)  # the lab's test (masked) images: normalise the input
    c.data.test_std = (0.2620, 0.2527, 0.2543)   # and de-normalise the output of sample.py with these

    # sample.py: the lab's decoding protocol (its flags override these where given).
    c.sample.schedule = "cosine"    # gamma of the course code (training grids; sample.py --schedule)
    c.sample.total_iter = 8         # decoding steps T (training grids; sample.py --total_iter)
    c.sample.sweet_spot = config_dict.placeholder(int)  # stop after this many steps; None = all T
    c.sample.choice_temperature = 4.5  # Gumbel noise scale on the confidences, annealed by 1 - t/T
    c.sample.composite = "none"     # the whole decoded image is the output (no pasting of known pixels)
    c.sample.pixel_feedback = False  # the course decodes from the token mask alone
    return c
