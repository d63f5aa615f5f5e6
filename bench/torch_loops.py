"""What the PyTorch course code does around its models: an eager training step on token ids and the
iterative inpainting loop, written the course's way (plain eager PyTorch, host control flow)."""

import contextlib
import math

import numpy as np
import torch
import torch.nn.functional as F

# The course's gamma_func.
GAMMA = {
    "linear": lambda r: 1 - r,
    "cosine": lambda r: math.cos(r * math.pi / 2),
    "square": lambda r: 1 - r ** 2,
}


def autocast(dtype: str, device: str):
    """bfloat16 autocast on a GPU for a bfloat16 row; float32 otherwise."""
    if dtype == "bfloat16" and device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def adamw(model, lr: float = 1e-4):
    return torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.96), weight_decay=0.05)


def train_step(model, optimizer, tokens_BxL: torch.Tensor, num_codes: int, dtype: str) -> float:
    """One update: mask ceil(cos(pi r / 2) * L) random tokens per example, cross-entropy on them."""
    model.train()
    batch, length = tokens_BxL.shape
    device = tokens_BxL.device
    r = torch.rand(batch, device=device)
    n_masked = torch.ceil(torch.cos(r * math.pi / 2) * length).clamp(min=1)
    ranks = torch.rand(batch, length, device=device).argsort(-1).argsort(-1)
    mask = ranks < n_masked[:, None]
    inputs = tokens_BxL.masked_fill(mask, num_codes)
    with autocast(dtype, device.type):
        logits = model(inputs)
    loss = F.cross_entropy(logits[mask].float(), tokens_BxL[mask])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()  # the course logs every step's loss


def to_nchw(images_uint8: np.ndarray, mean, std, device: str) -> torch.Tensor:
    x = torch.from_numpy(images_uint8).to(device).permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return (x - m) / s


@torch.no_grad()
def inpaint(transformer, vqgan, ids_BxL, unknown_BxL, images_uint8, num_codes: int, total_iter: int,
            schedule: str, mean, std, dtype: str, choice_temperature: float = 4.5):
    """The course's MaskGIT inpainting loop for a batch (the course runs it with batch 1).

    With ``vqgan`` the masked images are encoded to ids and the result decoded to images (the whole
    pass); without it ``ids_BxL`` go in and ids come out (the transformer part alone).
    Returns the final ids (B, L) (and the images when ``vqgan`` is given).
    """
    transformer.eval()
    device = unknown_BxL.device
    with autocast(dtype, device.type):
        if vqgan is not None:
            _, indices, _ = vqgan.encode(to_nchw(images_uint8, mean, std, device.type))
            ids_BxL = indices.view(unknown_BxL.shape)
        mask = unknown_BxL.clone()
        ids = torch.where(mask, torch.full_like(ids_BxL, num_codes), ids_BxL)
        mask_num = mask.sum(-1, keepdim=True)
        for step in range(total_iter):
            probs = F.softmax(transformer(ids)[..., :num_codes].float(), dim=-1)
            confidence, predicted = probs.max(dim=-1)
            predicted = torch.where(mask, predicted, ids)
            ratio = (step + 1) / total_iter
            keep = torch.floor(GAMMA[schedule](ratio) * mask_num).long()
            keep = torch.minimum(keep, (mask.sum(-1, keepdim=True) - 1).clamp(min=0))
            gumbel = -torch.log(-torch.log(torch.rand_like(confidence).clamp(1e-20, 1.0)))
            confidence = confidence + choice_temperature * (1 - ratio) * gumbel
            confidence = torch.where(mask, confidence, torch.full_like(confidence, math.inf))
            ranks = confidence.argsort(-1).argsort(-1)
            mask = ranks < keep
            ids = torch.where(mask, torch.full_like(predicted, num_codes), predicted)
        if vqgan is None:
            return ids
        grid = int(round(ids.shape[1] ** 0.5))
        return ids, vqgan.decode_indices(ids, grid).float().cpu()
