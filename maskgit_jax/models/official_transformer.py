"""The transformer of the official MaskGIT ImageNet checkpoints (google-research/maskgit), in flax.

A BERT-style encoder (Chang et al. 2022, https://arxiv.org/abs/2202.04200) written here from the
conventions of the released checkpoints, so that ``maskgit_imagenet256_checkpoint`` and
``maskgit_imagenet512_checkpoint`` load as they are (their ``params`` tree has exactly this module's
names and shapes: no renaming table):

    ids (B, 1 + L): [codebook_size + class label, image tokens...], mask = -1
    x = LN(word_embeddings[ids] + position_embeddings[:1 + L])          Embed_0
    x = LN(x + MHA(x)); x = LN(x + W2 gelu(W1 x))   (post-LN)          TransformerLayer_i
    logits = LN(gelu(Dense(x))) @ word_embeddings^T + bias             MlmLayer_0 (tied head)

LayerNorm eps is 1e-12 (BERT's), GELU the tanh approximation (``jax.nn.gelu``'s default), attention
has no mask and no causal structure. The vocabulary is codebook_size + num_classes + 1: the image
codes, one class token per label, and the mask row. The official code feeds the mask as -1 and
relies on ``jnp.take`` wrapping it to the last row; here that wrap is written out, so -1 and the
last row's id give bit-identical logits. Logits cover the whole vocabulary at every position (the
class position included); decoders slice the codes ``[..., :codebook_size]``.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

LN_EPS = 1e-12  # BERT's LayerNorm epsilon, used by every LayerNorm of the official model
MASK_ID = -1  # the official [MASK] id: the last embedding row, reached by wrap-around


def _layer_norm(name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=LN_EPS, name=name)


class _Embed(nn.Module):
    vocab_size: int
    hidden_size: int
    max_position_embeddings: int

    @nn.compact
    def __call__(self, ids_BxL):
        words = nn.Embed(self.vocab_size, self.hidden_size, name="word_embeddings")
        positions = nn.Embed(self.max_position_embeddings, self.hidden_size, name="position_embeddings")
        x = words(ids_BxL) + positions(jnp.arange(ids_BxL.shape[-1])[None])
        return _layer_norm("embeddings_ln")(x), words.embedding


class _SelfAttention(nn.Module):
    """q, k, v, out projections (DenseGeneral over heads, with biases); softmax(q k^T / sqrt(d)) v."""
    num_heads: int
    hidden_size: int

    @nn.compact
    def __call__(self, x_BxLxD):
        head_dim = self.hidden_size // self.num_heads
        proj = lambda name: nn.DenseGeneral((self.num_heads, head_dim), name=name)(x_BxLxD)
        q_BxLxNxH = proj("query") / jnp.sqrt(head_dim).astype(x_BxLxD.dtype)
        k_BxLxNxH, v_BxLxNxH = proj("key"), proj("value")
        weights_BxNxLxL = jax.nn.softmax(jnp.einsum("bqnh,bknh->bnqk", q_BxLxNxH, k_BxLxNxH), axis=-1)
        out_BxLxNxH = jnp.einsum("bnqk,bknh->bqnh", weights_BxNxLxL, v_BxLxNxH)
        return nn.DenseGeneral(self.hidden_size, axis=(-2, -1), name="out")(out_BxLxNxH)


class _Attention(nn.Module):
    num_heads: int
    hidden_size: int

    @nn.compact
    def __call__(self, x):
        h = _SelfAttention(self.num_heads, self.hidden_size, name="self_attention")(x)
        return _layer_norm("attention_output_ln")(h + x)


class _Mlp(nn.Module):
    hidden_size: int
    intermediate_size: int

    @nn.compact
    def __call__(self, x):
        h = jax.nn.gelu(nn.Dense(self.intermediate_size, name="intermediate_output")(x))
        h = nn.Dense(self.hidden_size, name="layer_output")(h)
        return _layer_norm("layer_output_ln")(h + x)


class _TransformerLayer(nn.Module):
    num_heads: int
    hidden_size: int
    intermediate_size: int

    @nn.compact
    def __call__(self, x):
        x = _Attention(self.num_heads, self.hidden_size, name="Attention_0")(x)
        return _Mlp(self.hidden_size, self.intermediate_size, name="Mlp_0")(x)


class _Bias(nn.Module):
    @nn.compact
    def __call__(self, x):
        return x + self.param("bias", nn.initializers.zeros, (x.shape[-1],))


class _MlmLayer(nn.Module):
    hidden_size: int

    @nn.compact
    def __call__(self, x, word_embeddings_VxD):
        h = jax.nn.gelu(nn.Dense(self.hidden_size, name="mlm_dense")(x))
        h = _layer_norm("mlm_ln")(h)
        return _Bias(name="mlm_bias")(h @ word_embeddings_VxD.T)


class OfficialTransformer(nn.Module):
    """``__call__(ids_Bx(1+L)) -> logits_Bx(1+L)xV`` (float32) on [class token | image tokens].

    codebook_size: K image codes (ids 0..K-1). num_classes: class tokens K..K+C-1.
    seq_len: L image tokens (the class token adds one position).
    The mask is id -1 (or V-1 = K + C, the same row).
    """
    codebook_size: int = 1024
    num_classes: int = 1000
    seq_len: int = 256
    hidden_size: int = 768
    num_layers: int = 24
    num_heads: int = 16
    intermediate_size: int = 3072

    @property
    def vocab_size(self) -> int:
        return self.codebook_size + self.num_classes + 1

    @property
    def num_codes(self) -> int:
        return self.codebook_size

    @property
    def mask_id(self) -> int:
        return MASK_ID

    @property
    def class_conditional(self) -> bool:
        return True

    def class_tokens(self, labels_B):
        """The position-0 token of each example: codebook_size + label."""
        return (self.codebook_size + jnp.asarray(labels_B, jnp.int32)).astype(jnp.int32)

    @nn.compact
    def __call__(self, ids_BxL, predicted_BxL=None):
        """predicted_BxL: ignored (the official model has no flag for the decoder's own guesses); it
        is accepted so that callers treat every transformer alike."""
        del predicted_BxL
        ids_BxL = jnp.asarray(ids_BxL, jnp.int32)
        # -1 (the official mask id) is the last row, as jnp.take's wrap-around gives it upstream.
        ids_BxL = jnp.where(ids_BxL < 0, ids_BxL + self.vocab_size, ids_BxL)
        x, word_embeddings_VxD = _Embed(self.vocab_size, self.hidden_size, self.seq_len + 1,
                                        name="Embed_0")(ids_BxL)
        for i in range(self.num_layers):
            x = _TransformerLayer(self.num_heads, self.hidden_size, self.intermediate_size,
                                  name=f"TransformerLayer_{i}")(x)
        return _MlmLayer(self.hidden_size, name="MlmLayer_0")(x, word_embeddings_VxD)
