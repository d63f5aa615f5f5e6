"""maskgit_jax: MaskGIT (VQGAN tokenizer + bidirectional transformer) for image inpainting in JAX/Flax.

    from maskgit_jax import MaskGIT
    model = MaskGIT.from_pretrained("faces-small")
    result = model.inpaint(image, mask)          # mask: 1 = known pixel
"""

__version__ = "0.2.0"
__all__ = ["MaskGIT", "InpaintOutput", "DecodingOptions", "ModelConfig"]


def __getattr__(name):
    # Imported on first use, so `import maskgit_jax.fid` (or the configs) does not load the models.
    if name in ("MaskGIT", "InpaintOutput"):
        from maskgit_jax import pipeline
        return getattr(pipeline, name)
    if name in ("DecodingOptions", "ModelConfig"):
        from maskgit_jax import model_config
        return getattr(model_config, name)
    raise AttributeError(f"module 'maskgit_jax' has no attribute {name!r}")
