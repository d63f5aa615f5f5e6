"""The two implementations of one configuration: the JAX models of configs/faces.py and the same
architecture in the PyTorch course code (tests/torch_course.py)."""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from maskgit_jax.configs import faces as faces_config
from maskgit_jax.models import from_config
from maskgit_jax.models.transformer import transformer_flops_per_example
from maskgit_jax.models.vqgan import num_groups_for


@dataclasses.dataclass
class JaxModels:
    name: str             # tiny | small | lab
    dtype: str            # compute dtype; parameters are float32
    config: Any
    vqgan: Any
    vq_params: Any
    transformer: Any
    tr_params: Any

    @property
    def seq_len(self) -> int:
        return self.transformer.seq_len

    @property
    def num_codes(self) -> int:
        return self.transformer.num_codes

    def forward_flops(self) -> float:
        """Analytic forward matmul FLOPs of the transformer for one example."""
        t = self.transformer
        return transformer_flops_per_example(t.seq_len, t.dim, t.depth, t.mlp_dim, t.num_codes)

    def describe(self) -> str:
        t = self.transformer
        return (f"{self.name}: transformer {t.dim}x{t.depth} blocks, {t.seq_len} tokens, "
                f"K={t.num_codes}; VQGAN {tuple(self.config.vqgan.enc_channels)}")


def config(name: str, dtype: str = "float32"):
    c = faces_config.get_config(name)
    c.compute_dtype = dtype
    # The course's masked-token step, the work the PyTorch reference does: no self-conditioning pass.
    c.transformer.self_condition = 0.0
    c.transformer_model.predicted_embedding = False
    return c


def jax_models(name: str, dtype: str, seed: int = 0) -> JaxModels:
    """Randomly initialised models (speed does not depend on the weights)."""
    c = config(name, dtype)
    vqgan, transformer = from_config.vqgan(c), from_config.transformer(c)
    size = c.data.image_size
    vq_params = jax.jit(vqgan.init)(jax.random.key(seed),
                                    jnp.zeros((1, size, size, 3), jnp.float32))["params"]
    tr_params = jax.jit(transformer.init)(jax.random.key(seed + 1),
                                          jnp.zeros((1, transformer.seq_len), jnp.int32))["params"]
    return JaxModels(name, dtype, c, vqgan, vq_params, transformer, tr_params)


def torch_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def release_torch_memory() -> None:
    """Hands PyTorch's cached GPU memory back, for the JAX measurements that follow."""
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def torch_transformer(m: JaxModels):
    from tests import torch_course
    t = m.transformer
    model = torch_course.BidirectionalTransformer(
        num_image_tokens=t.seq_len, num_codebook_vectors=t.num_codes, dim=t.dim, n_layers=t.depth,
        hidden_dim=t.mlp_dim, num_heads=t.heads, drop_p=t.dropout)
    return model.to(torch_device())


def torch_vqgan_mismatch(m: JaxModels) -> str | None:
    """Why the course's VQGAN cannot express this configuration, or None when it can."""
    v = m.config.vqgan
    channels = set(v.enc_channels) | set(v.dec_channels)
    if any(c % 32 or num_groups_for(c) != 32 for c in channels):
        return "the course VQGAN's GroupNorm has 32 groups; this config has narrower layers"
    if not v.mid_attention:
        return "the course VQGAN always has middle attention blocks; this config has none"
    return None


def torch_vqgan(m: JaxModels):
    """The course VQGAN with this config's layout (see ``torch_vqgan_mismatch``)."""
    from tests import torch_course
    v = m.config.vqgan
    model = torch_course.VQGAN(
        image_channels=v.image_channels, enc_channels=tuple(v.enc_channels),
        dec_channels=tuple(v.dec_channels), enc_num_res_blocks=v.enc_num_res_blocks,
        dec_num_res_blocks=v.dec_num_res_blocks, enc_downsample_levels=tuple(v.enc_downsample_levels),
        dec_upsample_levels=tuple(v.dec_upsample_levels), attn_resolutions=tuple(v.attn_resolutions),
        img_resolution=v.img_resolution, latent_dim=v.latent_dim, num_codebook_vectors=v.num_codes,
        beta=v.beta)
    return model.to(torch_device()).eval()


def random_ids(m: JaxModels, count: int, seed: int = 0) -> np.ndarray:
    """(count, L) int32 token ids in [0, K): stands in for a token cache."""
    return np.random.default_rng(seed).integers(0, m.num_codes, (count, m.seq_len), dtype=np.int32)
