"""The bidirectional transformer of stage 2: token ids (with [MASK] = num_codes) -> logits over the codes.

Layout (the course's transformer; MaskGIT, Chang et al. 2022): Embedding(K+1, d) + learned position
embedding -> LayerNorm -> dropout -> post-LN encoder blocks -> prediction head (Dense, GELU, LN) ->
logits = h @ tok_emb^T + bias[position, token].
Optionally (not in the course model) a learned ``pred_emb`` is added to the input where the id is the
decoder's own earlier guess (``predicted_embedding``; trained by self-conditioning).
Submodule names follow the course checkpoint (``tok_emb``, ``pos_emb``, ``blocks_{i}/Attention``,
``LayerNorm1``, ``MLP_0`` ...) so its state_dict maps one-to-one.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from maskgit_jax.models.precision import at_least_float32

Dtype = Any


ATTENTION = ("auto", "xla", "cudnn", "einsum")


def einsum_attention(q_BxLxNxH, k_BxLxNxH, v_BxLxNxH):
    """softmax(q k^T / sqrt(H)) v spelled out: the (B, N, L, L) weights are materialised.

    The heads are moved in front of the positions first, so both products are matmuls batched over
    the leading (B, N) axes, the layout XLA's dot kernels take without copies; the same einsums over
    (B, L, N, H) operands ran several times slower on a CPU.
    """
    scale = q_BxLxNxH.shape[-1] ** -0.5
    q_BxNxLxH, k_BxNxLxH, v_BxNxLxH = (jnp.swapaxes(x, 1, 2)
                                       for x in (q_BxLxNxH, k_BxLxNxH, v_BxLxNxH))
    logits_BxNxLxL = jnp.einsum("bnqh,bnkh->bnqk", q_BxNxLxH * scale, k_BxNxLxH)
    weights_BxNxLxL = jax.nn.softmax(logits_BxNxLxL.astype(at_least_float32(logits_BxNxLxL.dtype)),
                                     axis=-1)
    out_BxNxLxH = jnp.einsum("bnqk,bnkh->bnqh", weights_BxNxLxL.astype(v_BxNxLxH.dtype), v_BxNxLxH)
    return jnp.swapaxes(out_BxNxLxH, 1, 2)


def resolved_attention(attention: str) -> str:
    """The implementation ``attention`` stands for on the default backend: "auto" is "einsum" on the
    CPU (faster there than ``jax.nn.dot_product_attention`` in training, level in decoding:
    ``python -m bench.attention_speed``) and stays "auto" (that function's own choice, cuDNN where
    it applies) elsewhere."""
    if attention not in ATTENTION:
        raise ValueError(f"attention must be one of {ATTENTION}, got {attention!r}")
    return "einsum" if attention == "auto" and jax.default_backend() == "cpu" else attention


class Attention(nn.Module):
    """Multi-head self-attention over all positions (no causal mask).

    attention: "auto" = ``einsum_attention`` on the CPU, elsewhere jax.nn.dot_product_attention,
    which on GPU picks the fused cuDNN (flash) kernel when the shapes and dtype allow it; "xla" /
    "cudnn" force that function's implementation; "einsum" = ``einsum_attention``. All give the same
    result up to rounding.
    """
    dim: int
    heads: int
    dtype: Dtype = jnp.float32
    attention: str = "auto"
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x_BxLxD):
        attention = resolved_attention(self.attention)
        head_dim = self.dim // self.heads
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        proj = lambda name: nn.DenseGeneral((self.heads, head_dim), name=name, **kw)
        q_BxLxNxH, k_BxLxNxH, v_BxLxNxH = (proj(n)(x_BxLxD) for n in ("query", "key", "value"))
        if attention == "einsum":
            out_BxLxNxH = einsum_attention(q_BxLxNxH, k_BxLxNxH, v_BxLxNxH)
        else:
            implementation = None if attention == "auto" else attention
            out_BxLxNxH = jax.nn.dot_product_attention(q_BxLxNxH, k_BxLxNxH, v_BxLxNxH,
                                                       implementation=implementation)
        return nn.DenseGeneral(self.dim, axis=(-2, -1), name="out", **kw)(out_BxLxNxH)


class Block(nn.Module):
    """Post-LN encoder block: x = LN(x + drop(MHA(x))); x = LN(x + drop(MLP(x)))."""
    dim: int
    heads: int
    mlp_dim: int
    dropout: float
    ln_eps: float
    dtype: Dtype = jnp.float32
    attention: str = "auto"
    param_dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool):
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        ln = lambda name: nn.LayerNorm(epsilon=self.ln_eps, dtype=at_least_float32(self.dtype),
                                       param_dtype=self.param_dtype, name=name)
        drop = nn.Dropout(self.dropout, deterministic=not train)
        attn = Attention(self.dim, self.heads, self.dtype, self.attention, self.param_dtype,
                         name="Attention")(x)
        x = ln("LayerNorm1")(x + drop(attn)).astype(self.dtype)
        h = nn.Dense(self.mlp_dim, name="MLP_0", **kw)(x)
        h = nn.gelu(h, approximate=False)
        h = nn.Dense(self.dim, name="MLP_2", **kw)(h)
        return ln("LayerNorm2")(x + drop(h)).astype(self.dtype)


class BidirectionalTransformer(nn.Module):
    """MaskGIT's transformer. ``__call__(ids_BxL, train) -> logits_BxLx(K+1)`` in float32 (float64
    for a float64 ``dtype``: ``precision.at_least_float32``).

    num_codes: K, the codebook size; id K is [MASK].  seq_len: number of tokens L.
    dim / depth / heads / mlp_dim: width, number of blocks, attention heads, MLP hidden width.
    dropout: rate on embeddings, attention output and MLP output.  ln_eps: LayerNorm epsilon.
    dtype: compute dtype (bf16 on accelerators).  param_dtype: float32 (float64 only with a float64
      ``dtype``, for numerical checks: ``models.precision``).
    attention: how attention is computed (see ``Attention``); the parameters are the same.
    predicted_embedding: adds a learned vector ``pred_emb`` to the input at positions flagged in
      ``predicted_BxL``: ids the decoder filled in at an earlier step, as opposed to given ones, so the
      model can learn how far to trust its own guesses (trained with ``self_condition``, see
      ``train.transformer_stage``). Off in the course architecture.
    """
    num_codes: int
    seq_len: int
    dim: int = 768
    depth: int = 15
    heads: int = 16
    mlp_dim: int = 1536
    dropout: float = 0.1
    ln_eps: float = 1e-12
    dtype: Dtype = jnp.float32
    attention: str = "auto"
    predicted_embedding: bool = False
    param_dtype: Dtype = jnp.float32

    @property
    def mask_id(self) -> int:
        return self.num_codes

    @nn.compact
    def __call__(self, ids_BxL, train: bool = False, predicted_BxL=None):
        """predicted_BxL: bool, True where the id is an earlier prediction; None = none. Ignored
        without ``predicted_embedding``, so callers may always pass it."""
        vocab = self.num_codes + 1
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        stats = at_least_float32(self.dtype)
        tok_emb = nn.Embed(vocab, self.dim, embedding_init=nn.initializers.normal(0.02),
                           param_dtype=self.param_dtype, name="tok_emb")
        pos_emb = self.param("pos_emb", nn.initializers.normal(0.02), (self.seq_len, self.dim),
                             self.param_dtype)
        x = tok_emb(ids_BxL) + pos_emb[None, : ids_BxL.shape[1]]
        if self.predicted_embedding:
            pred_emb = self.param("pred_emb", nn.initializers.normal(0.02), (self.dim,),
                                  self.param_dtype)
            if predicted_BxL is not None:
                x = x + jnp.where(predicted_BxL[..., None], pred_emb, 0.0)
        x = nn.LayerNorm(epsilon=self.ln_eps, param_dtype=self.param_dtype, name="LN")(x)
        x = nn.Dropout(self.dropout, deterministic=not train)(x).astype(self.dtype)
        for i in range(self.depth):
            x = Block(self.dim, self.heads, self.mlp_dim, self.dropout, self.ln_eps, self.dtype,
                      self.attention, self.param_dtype, name=f"blocks_{i}")(x, train)
        h = nn.Dense(self.dim, name="Token_Prediction_0", **kw)(x)
        h = nn.gelu(h, approximate=False)
        h = nn.LayerNorm(epsilon=self.ln_eps, param_dtype=self.param_dtype,
                         name="Token_Prediction_2")(h)
        bias = self.param("bias", nn.initializers.zeros, (self.seq_len, vocab), self.param_dtype)
        # Weight tying with the input embedding; the product and the bias stay in float32 (or wider).
        logits = jnp.einsum("bld,vd->blv", h.astype(stats), tok_emb.embedding)
        return logits + bias[None, : ids_BxL.shape[1]]


def lab_transformer_config() -> dict:
    """Constructor arguments of the course transformer (NYCU lab), for checkpoint import."""
    return dict(num_codes=1024, seq_len=256, dim=768, depth=15, heads=16, mlp_dim=1536, dropout=0.1,
                ln_eps=1e-12)


def transformer_flops_per_example(seq_len: int, dim: int, depth: int, mlp_dim: int,
                                  num_codes: int) -> float:
    """Forward matmul FLOPs of one sequence (2 per multiply-add): projections, attention, MLP, logits."""
    per_block = 2 * seq_len * (4 * dim * dim + 2 * dim * mlp_dim) + 4 * seq_len * seq_len * dim
    head = 2 * seq_len * dim * dim + 2 * seq_len * dim * (num_codes + 1)
    return float(depth * per_block + head)
