"""A course transformer checkpoint (bare state_dict) -> this project's transformer config and parameters.

Keys (the course's transformer checkpoint): ``tok_emb.weight`` (K+1, d), ``pos_emb`` (L, d), ``bias`` (L, K+1), ``LN.*``,
``blocks.{i}.LayerNorm1/2.*``, ``blocks.{i}.MLP.0/2.*``, ``Token_Prediction.0/2.*`` and
``blocks.{i}.Attention.*``, whose names are the user's own. Accepted attention layouts: a fused
projection (``qkv`` or nn.MultiheadAttention's ``in_proj_weight``, split as q, k, v blocks of d
features with the heads contiguous in each: the timm / torch convention) or separate ``query/key/value``,
``Wq/Wk/Wv``, ``q/k/v`` or ``q_proj/k_proj/v_proj``; output ``linear``, ``proj``, ``out``, ``out_proj``
or ``o_proj``; biases optional (absent = zero). Linear weights (out, in) are transposed; q/k/v become
DenseGeneral kernels (d, heads, d/heads) and the output one (heads, d/heads, d).

The head count is not in the weights: it is an argument (the lab's 16 by default).
"""

import re
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from maskgit_jax.lab_import.weights import Weights
from maskgit_jax.models.transformer import BidirectionalTransformer, lab_transformer_config

FUSED = ("qkv", "in_proj")
SEPARATE = (("query", "key", "value"), ("Wq", "Wk", "Wv"), ("q", "k", "v"),
            ("q_proj", "k_proj", "v_proj"))
OUTPUTS = ("linear", "proj", "out", "out_proj", "o_proj")
NAMINGS = "fused qkv / in_proj_weight, query/key/value, Wq/Wk/Wv, q/k/v or q_proj/k_proj/v_proj; " \
          "output " + "/".join(OUTPUTS)

_INDEXED = re.compile(r"^(.*)_(\d+)$")  # flax "blocks_3" <- torch "blocks.3"
_TORCH_LEAF = {"kernel": "weight", "scale": "weight", "bias": "bias", "embedding": "weight"}


def _fused_keys(prefix: str, name: str) -> tuple[str, str]:
    """(weight, bias) keys of a fused projection: ``qkv.*`` or ``in_proj_weight/bias``."""
    if name == "in_proj":
        return prefix + "in_proj_weight", prefix + "in_proj_bias"
    return prefix + f"{name}.weight", prefix + f"{name}.bias"


class _Attention:
    """The q/k/v/out Linear weights (out, in) and biases of one block, whatever their names."""

    def __init__(self, weights: Weights, prefix: str):
        self.weights, self.prefix = weights, prefix
        self.qkv = self._projections()
        self.out = self._output()

    def _projections(self) -> Optional[list[tuple[str, np.ndarray, Optional[np.ndarray]]]]:
        """[(source key, weight (d, d), bias (d,) or None)] for q, k, v; None when not recognised."""
        w = self.weights
        for name in FUSED:
            wkey, bkey = _fused_keys(self.prefix, name)
            if w.has(wkey):
                weight, bias = w.take(wkey), w.optional(bkey)
                if weight.shape[0] % 3:
                    w.wrong_shapes.append(f"{wkey} {weight.shape} (rows not 3 x dim)")
                    return None
                d = weight.shape[0] // 3
                return [(wkey, weight[i * d:(i + 1) * d],
                         None if bias is None else bias[i * d:(i + 1) * d]) for i in range(3)]
        for names in SEPARATE:
            if any(w.has(f"{self.prefix}{n}.weight") for n in names):
                found = [(f"{self.prefix}{n}.weight", w.take(f"{self.prefix}{n}.weight"),
                          w.optional(f"{self.prefix}{n}.bias")) for n in names]
                return None if any(weight is None for _, weight, _ in found) else found
        w.missing.append(f"{self.prefix}{{qkv|query,key,value|Wq,Wk,Wv}}.weight")
        return None

    def _output(self) -> Optional[tuple[str, np.ndarray, Optional[np.ndarray]]]:
        w = self.weights
        for name in OUTPUTS:
            key = f"{self.prefix}{name}.weight"
            if w.has(key):
                return key, w.take(key), w.optional(f"{self.prefix}{name}.bias")
        w.missing.append(f"{self.prefix}{{linear|proj|out}}.weight")
        return None

    def leaf(self, module: str, leaf: str, shape: tuple[int, ...]):
        """(source, array) for flax ``Attention/{query,key,value,out}/{kernel,bias}`` of ``shape``."""
        if module == "out":
            source = self.out
        else:
            source = None if self.qkv is None else self.qkv[("query", "key", "value").index(module)]
        if source is None:
            return None
        key, weight, bias = source
        if leaf == "kernel":
            value = weight.T  # (out, in) -> (in, out); the flat axis splits into (heads, head_dim)
        else:
            value = np.zeros((weight.shape[0],), np.float32) if bias is None else bias
        if value.size != int(np.prod(shape)):
            return key, value  # the caller reports the shape mismatch
        return key, value.reshape(shape)


def torch_key(path: tuple[str, ...]) -> str:
    """The torch key of a flax transformer parameter path outside the attention."""
    *modules, leaf = path
    names = [_INDEXED.sub(r"\1.\2", m) for m in modules]
    if not modules:  # top-level parameters: pos_emb, bias
        return leaf
    return ".".join(names + [_TORCH_LEAF[leaf]])


def _builder(weights: Weights, abstract: dict):
    shapes = {p: leaf.shape for p, leaf in traverse_util.flatten_dict(abstract).items()}
    attention: dict[str, _Attention] = {}

    def build(path):
        if len(path) == 4 and path[1] == "Attention":
            block = path[0]
            if block not in attention:
                attention[block] = _Attention(weights, _INDEXED.sub(r"\1.\2", block) + ".Attention.")
            return attention[block].leaf(path[2], path[3], shapes[path])
        key = torch_key(path)
        value = weights.take(key)
        if value is None:
            return None
        if path[-1] == "kernel":
            value = value.T  # Linear (out, in) -> Dense (in, out)
        if key == "pos_emb" and value.ndim == 3 and value.shape[0] == 1:
            value = value[0]  # (1, L, d), a common variant of (L, d)
        return key, value
    return build


def infer_transformer_config(weights: Weights, heads: int) -> dict:
    """`BidirectionalTransformer` kwargs (lab dropout and LayerNorm eps) from the tensor shapes."""
    def shape(key):
        s = weights.shape(key)
        if s is None:
            raise weights.fail(f"no {key}: not a course transformer state_dict")
        return s

    vocab, dim = shape("tok_emb.weight")
    seq_len = shape("pos_emb")[-2]
    depth = len({m.group(1) for k in weights.arrays if (m := re.match(r"^blocks\.(\d+)\.", k))})
    mlp_dim = shape("blocks.0.MLP.0.weight")[0]
    if dim % heads:
        raise weights.fail(f"width {dim} is not divisible by {heads} attention heads (--heads)")
    return dict(lab_transformer_config(), num_codes=vocab - 1, seq_len=seq_len, dim=dim, depth=depth,
                heads=heads, mlp_dim=mlp_dim)


def convert_transformer(weights: Weights, heads: int = 16) -> tuple[dict, dict]:
    """(BidirectionalTransformer kwargs, float32 params) of a course transformer state_dict.

    Raises ConversionError (naming the file) listing unplaced keys, missing keys and wrong shapes.
    """
    config = infer_transformer_config(weights, heads)
    model = BidirectionalTransformer(**config)
    abstract = jax.eval_shape(model.init, jax.random.key(0),
                              jnp.zeros((1, config["seq_len"]), jnp.int32))["params"]
    params = weights.fill(abstract, _builder(weights, abstract), "transformer",
                          hint=("Attention.", f"attention layouts understood: {NAMINGS}"))
    return config, jax.tree.map(np.asarray, params)
