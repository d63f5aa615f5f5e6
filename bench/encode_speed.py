"""Tokenizer (VQGAN encoder + quantizer) speed: images -> token ids, as the token cache is built."""

import numpy as np

from bench import models, report, timing
from bench.models import JaxModels
from maskgit_jax.train import token_cache

COLUMNS = ["config", "dtype", "batch", "implementation", "images/s", "vs PyTorch"]


def table() -> report.Table:
    return report.Table("Tokenizer encode (images -> token ids)", COLUMNS, notes=[
        "maskgit_jax: `token_cache.encode_tokens` (host images in, host ids out).",
        "PyTorch: the course VQGAN's `encode` under torch.no_grad, batch by batch."])


def torch_images_per_second(m: JaxModels, images: np.ndarray, batch: int, repeats: int) -> float:
    import torch
    from bench import torch_loops
    dev = models.torch_device()
    vq = models.torch_vqgan(m)
    mean, std = tuple(m.config.data.mean), tuple(m.config.data.std)

    @torch.no_grad()
    def run():
        for start in range(0, len(images), batch):
            with torch_loops.autocast(m.dtype, dev):
                _, ids, _ = vq.encode(torch_loops.to_nchw(images[start:start + batch], mean, std, dev))
            ids.cpu()

    return len(images) / timing.seconds(run, repeats=repeats, sync=timing.torch_sync)


def measure(m: JaxModels, t: report.Table, images: np.ndarray, batch: int, repeats: int,
            with_torch: bool) -> None:
    mean, std = tuple(m.config.data.mean), tuple(m.config.data.std)
    run = lambda: token_cache.encode_tokens(m.vqgan, m.vq_params, images, mean, std, batch)
    jax_ips = len(images) / timing.seconds(run, repeats=repeats)
    mismatch = models.torch_vqgan_mismatch(m)
    torch_ips = (torch_images_per_second(m, images, batch, repeats)
                 if with_torch and mismatch is None else None)
    t.add(m.name, m.dtype, batch, "maskgit_jax (jit)", jax_ips, report.ratio(jax_ips, torch_ips))
    if torch_ips is not None:
        t.add(m.name, m.dtype, batch, "PyTorch course (eager)", torch_ips, None)
    elif with_torch and f"{m.name}: {mismatch}" not in t.notes:
        t.notes.append(f"{m.name}: no PyTorch row: {mismatch}.")
