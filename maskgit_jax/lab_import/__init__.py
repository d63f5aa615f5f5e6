"""Course (PyTorch "MaskGIT for Image Inpainting" lab) state_dicts -> this project's flax parameters.

    weights.py      a state_dict with bookkeeping: which keys were placed, which are missing
    vqgan_layout.py the VQGAN constructor arguments inferred from a state_dict's keys and shapes
    vqgan.py        VQGAN.pt -> (config, params)
    transformer.py  the transformer checkpoint -> (config, params), attention naming variants

`maskgit_jax.convert_lab` puts them together and writes a workdir for sample.py / train.py.
"""
