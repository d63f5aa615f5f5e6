"""The official MaskGIT ImageNet checkpoints (google-research/maskgit, Apache-2.0) on current JAX.

``checkpoints``: the architecture presets of the released files and their reader (msgpack, no
TensorFlow, no pickle). ``decoding``: ``parallel_decode.decode``'s arithmetic, so that the same key
gives the same tokens.
"""
