"""The PyTorch course architecture ("MaskGIT for Image Inpainting", NYCU lab), written as the course does.

A test/benchmark reference only (the NYCU course's VQGAN and transformer as its lab code defines them), never imported by the package: plain eager
PyTorch, NCHW images, state_dict keys exactly as the course checkpoints have them
(``encoder.model.{i}...``, ``codebook.embedding.weight``, ``blocks.{i}.Attention.*``, ...).
Defaults are the lab sizes; every size is a constructor argument so small instances can be built.

    vq = VQGAN()                                   # 315 tensors, 70,775,299 parameters
    tr = BidirectionalTransformer(attention="qkv+linear")
    torch.save(vq.state_dict(), "VQGAN.pt")        # what the course ships
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

LAB_ENC_CHANNELS = (128, 128, 128, 256, 256, 512)
LAB_DEC_CHANNELS = (128, 128, 256, 256, 512)

# Attention parameter names users give their MultiHeadAttention: (projections, output projection).
ATTENTION_NAMINGS = {
    "qkv+linear": (("qkv",), "linear"),
    "qkv+proj": (("qkv",), "proj"),
    "query/key/value+proj": (("query", "key", "value"), "proj"),
    "Wq/Wk/Wv+out": (("Wq", "Wk", "Wv"), "out"),
}


# --------------------------------------------------------------------------------------------
# Stage 1: VQGAN
# --------------------------------------------------------------------------------------------


class GroupNorm(nn.Module):
    def __init__(self, channels, groups=32):
        super().__init__()
        self.gn = nn.GroupNorm(num_groups=groups, num_channels=channels, eps=1e-6, affine=True)

    def forward(self, x):
        return self.gn(x)


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.block = nn.Sequential(
            GroupNorm(in_channels),
            Swish(),
            nn.Conv2d(in_channels, out_channels, 3, 1, 1),
            GroupNorm(out_channels),
            Swish(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
        )
        if in_channels != out_channels:
            self.channel_up = nn.Conv2d(in_channels, out_channels, 1, 1, 0)

    def forward(self, x):
        if self.in_channels != self.out_channels:
            return self.channel_up(x) + self.block(x)
        return x + self.block(x)


class UpSampleBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2.0)  # mode "nearest"
        return self.conv(x)


class DownSampleBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 2, 0)

    def forward(self, x):
        pad = (0, 1, 0, 1)  # one zero column right, one zero row at the bottom
        x = F.pad(x, pad, mode="constant", value=0)
        return self.conv(x)


class NonLocalBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.in_channels = channels
        self.norm = GroupNorm(channels)
        self.q = nn.Conv2d(channels, channels, 1, 1, 0)
        self.k = nn.Conv2d(channels, channels, 1, 1, 0)
        self.v = nn.Conv2d(channels, channels, 1, 1, 0)
        self.proj_out = nn.Conv2d(channels, channels, 1, 1, 0)

    def forward(self, x):
        h_ = self.norm(x)
        q = self.q(h_)
        k = self.k(h_)
        v = self.v(h_)
        b, c, h, w = q.shape
        q = q.reshape(b, c, h * w)
        q = q.permute(0, 2, 1)
        k = k.reshape(b, c, h * w)
        v = v.reshape(b, c, h * w)
        attn = torch.bmm(q, k)
        attn = attn * (int(c) ** (-0.5))
        attn = F.softmax(attn, dim=2)
        attn = attn.permute(0, 2, 1)
        A = torch.bmm(v, attn)
        A = A.reshape(b, c, h, w)
        return x + self.proj_out(A)


class Encoder(nn.Module):
    """Lab indices: 0 conv; 1-6 RBs with 7 Down; 8-11 RBs with 12 Down; 13 RB, 14 NL, 15 RB, 16 GN,
    17 swish, 18 conv(512->256)."""

    def __init__(self, image_channels=3, channels=LAB_ENC_CHANNELS, num_res_blocks=2,
                 downsample_levels=(2, 4), attn_resolutions=(16,), resolution=64, latent_dim=256):
        super().__init__()
        layers = [nn.Conv2d(image_channels, channels[0], 3, 1, 1)]
        for i in range(len(channels) - 1):
            in_channels = channels[i]
            out_channels = channels[i + 1]
            for j in range(num_res_blocks):
                layers.append(ResidualBlock(in_channels, out_channels))
                in_channels = out_channels
                if resolution in attn_resolutions:
                    layers.append(NonLocalBlock(in_channels))
            if i in downsample_levels:
                layers.append(DownSampleBlock(channels[i + 1]))
                resolution //= 2
        layers.append(ResidualBlock(channels[-1], channels[-1]))
        layers.append(NonLocalBlock(channels[-1]))
        layers.append(ResidualBlock(channels[-1], channels[-1]))
        layers.append(GroupNorm(channels[-1]))
        layers.append(Swish())
        layers.append(nn.Conv2d(channels[-1], latent_dim, 3, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class Decoder(nn.Module):
    """Lab indices: 0 conv(256->512); 1 RB, 2 NL, 3 RB; 4-9 RB/NL x3; 10 Up; 11-16 RBs; 17 Up;
    18-23 RBs; 24 GN; 25 conv(128->3). ``channels`` low level first, walked widest first."""

    def __init__(self, image_channels=3, channels=LAB_DEC_CHANNELS, num_res_blocks=3,
                 upsample_levels=(0, 2), attn_resolutions=(16,), resolution=16, latent_dim=256):
        super().__init__()
        channels = list(channels)[::-1]
        in_channels = channels[0]
        layers = [nn.Conv2d(latent_dim, in_channels, 3, 1, 1),
                  ResidualBlock(in_channels, in_channels),
                  NonLocalBlock(in_channels),
                  ResidualBlock(in_channels, in_channels)]
        for i in range(len(channels)):
            out_channels = channels[i]
            for j in range(num_res_blocks):
                layers.append(ResidualBlock(in_channels, out_channels))
                in_channels = out_channels
                if resolution in attn_resolutions:
                    layers.append(NonLocalBlock(in_channels))
            if i in upsample_levels:
                layers.append(UpSampleBlock(in_channels))
                resolution *= 2
        layers.append(GroupNorm(in_channels))
        layers.append(nn.Conv2d(in_channels, image_channels, 3, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


class Codebook(nn.Module):
    def __init__(self, num_codebook_vectors=1024, latent_dim=256, beta=0.25):
        super().__init__()
        self.num_codebook_vectors = num_codebook_vectors
        self.latent_dim = latent_dim
        self.beta = beta
        self.embedding = nn.Embedding(self.num_codebook_vectors, self.latent_dim)
        self.embedding.weight.data.uniform_(-1.0 / self.num_codebook_vectors,
                                           1.0 / self.num_codebook_vectors)

    def forward(self, z):
        """z (B, D, h, w) -> z_q (B, D, h, w), indices (B*h*w,), loss."""
        z = z.permute(0, 2, 3, 1).contiguous()
        z_flattened = z.view(-1, self.latent_dim)
        d = (torch.sum(z_flattened ** 2, dim=1, keepdim=True)
             + torch.sum(self.embedding.weight ** 2, dim=1)
             - 2 * torch.matmul(z_flattened, self.embedding.weight.t()))
        min_encoding_indices = torch.argmin(d, dim=1)
        z_q = self.embedding(min_encoding_indices).view(z.shape)
        loss = torch.mean((z_q.detach() - z) ** 2) + self.beta * torch.mean((z_q - z.detach()) ** 2)
        z_q = z + (z_q - z).detach()
        z_q = z_q.permute(0, 3, 1, 2)
        return z_q, min_encoding_indices, loss


class VQGAN(nn.Module):
    """Keys: encoder.model.*, decoder.model.*, codebook.embedding.weight, quant_conv.*, post_quant_conv.*."""

    def __init__(self, image_channels=3, enc_channels=LAB_ENC_CHANNELS, dec_channels=LAB_DEC_CHANNELS,
                 enc_num_res_blocks=2, dec_num_res_blocks=3, enc_downsample_levels=(2, 4),
                 dec_upsample_levels=(0, 2), attn_resolutions=(16,), img_resolution=64,
                 latent_dim=256, num_codebook_vectors=1024, beta=0.25):
        super().__init__()
        latent_resolution = img_resolution // 2 ** len(enc_downsample_levels)
        self.encoder = Encoder(image_channels, enc_channels, enc_num_res_blocks, enc_downsample_levels,
                               attn_resolutions, img_resolution, latent_dim)
        self.decoder = Decoder(image_channels, dec_channels, dec_num_res_blocks, dec_upsample_levels,
                               attn_resolutions, latent_resolution, latent_dim)
        self.codebook = Codebook(num_codebook_vectors, latent_dim, beta)
        self.quant_conv = nn.Conv2d(latent_dim, latent_dim, 1)
        self.post_quant_conv = nn.Conv2d(latent_dim, latent_dim, 1)

    def encode(self, x):
        """x (B, 3, H, W) normalised -> z_q (B, D, h, w), indices (B*h*w,) row-major, loss."""
        encoded_images = self.encoder(x)
        quant_conv_encoded_images = self.quant_conv(encoded_images)
        codebook_mapping, codebook_indices, q_loss = self.codebook(quant_conv_encoded_images)
        return codebook_mapping, codebook_indices, q_loss

    def decode(self, z):
        post_quant_conv_mapping = self.post_quant_conv(z)
        decoded_images = self.decoder(post_quant_conv_mapping)
        return decoded_images

    def decode_indices(self, indices, latent_resolution):
        """indices (B, h*w) -> images (B, 3, H, W), as the course's inpainting loop does."""
        z_q = self.codebook.embedding(indices).view(indices.shape[0], latent_resolution,
                                                     latent_resolution, -1)
        return self.decode(z_q.permute(0, 3, 1, 2))

    def forward(self, imgs):
        codebook_mapping, codebook_indices, q_loss = self.encode(imgs)
        decoded_images = self.decode(codebook_mapping)
        return decoded_images, codebook_indices, q_loss


# --------------------------------------------------------------------------------------------
# Stage 2: the bidirectional transformer
# --------------------------------------------------------------------------------------------


class MultiHeadAttention(nn.Module):
    """Self-attention with the parameter names of ``naming`` (a key of ATTENTION_NAMINGS).

    A fused projection is split as q, k, v blocks of ``dim`` features each, heads contiguous in
    each block (reshape(B, L, 3, heads, head_dim)), the common (timm) convention.
    """

    def __init__(self, dim=768, num_heads=16, attn_drop=0.1, naming="qkv+linear", bias=True):
        super().__init__()
        if naming not in ATTENTION_NAMINGS:
            raise ValueError(f"naming must be one of {sorted(ATTENTION_NAMINGS)}, got {naming!r}")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        projections, out_name = ATTENTION_NAMINGS[naming]
        self.projections = projections
        self.out_name = out_name
        if len(projections) == 1:
            setattr(self, projections[0], nn.Linear(dim, 3 * dim, bias=bias))
        else:
            for name in projections:
                setattr(self, name, nn.Linear(dim, dim, bias=bias))
        self.attn_drop = nn.Dropout(attn_drop)
        setattr(self, out_name, nn.Linear(dim, dim, bias=bias))

    def forward(self, x):
        """x (B, L, dim) -> (B, L, dim)."""
        B, L, C = x.shape
        if len(self.projections) == 1:
            qkv = getattr(self, self.projections[0])(x)
            qkv = qkv.reshape(B, L, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
            q, k, v = qkv[0], qkv[1], qkv[2]
        else:
            q, k, v = (getattr(self, name)(x).reshape(B, L, self.num_heads, self.head_dim)
                       .transpose(1, 2) for name in self.projections)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        attn = self.attn_drop(attn)
        out = (attn @ v).transpose(1, 2).reshape(B, L, C)
        return getattr(self, self.out_name)(out)


class MLP(nn.Sequential):
    def __init__(self, dim=768, hidden_dim=3072, drop_p=0.1):
        super().__init__(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(p=drop_p),
        )


class TokenPredictor(nn.Sequential):
    def __init__(self, dim=768):
        super().__init__(
            nn.Linear(in_features=dim, out_features=dim),
            nn.GELU(),
            nn.LayerNorm(dim, eps=1e-12),
        )


class Encoder_Block(nn.Module):
    """Post-LN: x = LN1(x + drop(attn(x))); x = LN2(x + MLP(x))."""

    def __init__(self, dim=768, hidden_dim=1536, num_heads=16, drop_p=0.1, naming="qkv+linear",
                 attn_bias=True):
        super().__init__()
        self.Attention = MultiHeadAttention(dim, num_heads, drop_p, naming, attn_bias)
        self.LayerNorm1 = nn.LayerNorm(dim, eps=1e-12)
        self.LayerNorm2 = nn.LayerNorm(dim, eps=1e-12)
        self.MLP = MLP(dim, hidden_dim, drop_p)
        self.dropout = nn.Dropout(p=drop_p)

    def forward(self, x):
        attn = self.Attention(x)
        attn = self.dropout(attn)
        x = x + attn
        x = self.LayerNorm1(x)
        mlp = self.MLP(x)
        x = x + mlp
        return self.LayerNorm2(x)


class BidirectionalTransformer(nn.Module):
    """ids (B, L) in [0, K] (K = [MASK]) -> logits (B, L, K+1).

    Key order as the course: pos_emb, bias, tok_emb.weight, blocks.*, Token_Prediction.*, LN.*.
    """

    def __init__(self, num_image_tokens=256, num_codebook_vectors=1024, dim=768, n_layers=15,
                 hidden_dim=1536, num_heads=16, drop_p=0.1, attention="qkv+linear", attn_bias=True):
        super().__init__()
        self.num_image_tokens = num_image_tokens
        self.tok_emb = nn.Embedding(num_codebook_vectors + 1, dim)
        self.pos_emb = nn.init.trunc_normal_(nn.Parameter(torch.zeros(num_image_tokens, dim)), 0., 0.02)
        self.blocks = nn.Sequential(*[Encoder_Block(dim, hidden_dim, num_heads, drop_p, attention,
                                                    attn_bias) for _ in range(n_layers)])
        self.Token_Prediction = TokenPredictor(dim)
        self.bias = nn.Parameter(torch.zeros(self.num_image_tokens, num_codebook_vectors + 1))
        self.LN = nn.LayerNorm(dim, eps=1e-12)
        self.drop = nn.Dropout(p=drop_p)
        self.apply(weights_init)

    def forward(self, x):
        token_embeddings = self.tok_emb(x)
        position_embeddings = self.pos_emb
        embed = self.drop(self.LN(token_embeddings + position_embeddings))
        embed = self.blocks(embed)
        embed = self.Token_Prediction(embed)
        logits = torch.matmul(embed, self.tok_emb.weight.T) + self.bias
        return logits


def weights_init(m):
    """The course's initialisation (normal(0, 0.02) weights, zero biases, unit LayerNorms)."""
    if isinstance(m, (nn.Linear, nn.Embedding)):
        m.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            m.bias.data.zero_()
    elif isinstance(m, nn.LayerNorm):
        m.bias.data.zero_()
        m.weight.data.fill_(1.0)


# --------------------------------------------------------------------------------------------
# Test helpers
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial random values for every parameter, in place; returns ``model`` in eval mode.

    Weights ~ N(0, 1/fan_in) (activations stay O(1) through deep stacks), biases ~ N(0, 0.1),
    GroupNorm/LayerNorm scales ~ 1 + N(0, 0.2) and shifts ~ N(0, 0.2): a converter that drops or
    transposes any of them changes the output.
    """
    g = torch.Generator().manual_seed(seed)
    norms = tuple(m for m in model.modules() if isinstance(m, (nn.GroupNorm, nn.LayerNorm)))
    norm_params = {id(p) for m in norms for p in m.parameters()}
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=g)
        if id(p) in norm_params:
            p.copy_(1.0 + 0.2 * noise if name.endswith("weight") else 0.2 * noise)
        elif name.endswith("bias") and p.ndim == 1:
            p.copy_(0.1 * noise)
        elif name.endswith("weight") and p.ndim >= 2 and not isinstance(
                _owner(model, name), nn.Embedding):
            p.copy_(noise / math.sqrt(math.prod(p.shape[1:])))
        else:  # embeddings, pos_emb, the (L, K+1) logit bias
            p.copy_(0.5 * noise)
    return model.eval()


def _owner(model: nn.Module, param_name: str) -> nn.Module:
    return model.get_submodule(param_name.rpartition(".")[0])
