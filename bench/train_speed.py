"""Stage-2 training speed: maskgit_jax's step next to the course's eager PyTorch step, with MFU."""

import jax
import numpy as np

from bench import device, jax_train, models, report, timing
from bench.models import JaxModels

# The project's CPU targets (issue 19): training at least this many times the eager PyTorch step.
TARGETS_VS_TORCH = {"tiny": 1.5, "small": 1.2}
COLUMNS = ["config", "dtype", "batch", "implementation", "images/s", "tokens/s", "TFLOP/s",
           "MFU (stated peak)", "% of measured matmul", "vs PyTorch"]


def table() -> report.Table:
    return report.Table(
        "Transformer training (stage 2 on token ids)", COLUMNS,
        notes=["FLOPs counted analytically: 3 x the forward matmul FLOPs of "
               "`transformer_flops_per_example` (projections, attention, MLP, logits) per image.",
               "MFU = achieved FLOP/s / the data-sheet dense peak of all devices (float32 on NVIDIA "
               "GPUs: the TF32 peak, which XLA uses for float32 matmuls); '% of measured matmul' "
               "divides by the large-matmul rate measured at the top instead.",
               "PyTorch: the course's eager step (random masks, cross-entropy on the masked "
               "tokens, AdamW, loss.item() each step), bfloat16 rows under torch.autocast."])


def torch_images_per_second(m: JaxModels, data: np.ndarray, batch: int, steps: int,
                            repeats: int) -> float:
    import torch
    from bench import torch_loops
    dev = models.torch_device()
    model = models.torch_transformer(m)
    optimizer = torch_loops.adamw(model)
    rng = np.random.default_rng(0)

    def run(count):
        for _ in range(count):
            tokens = torch.from_numpy(data[rng.integers(0, len(data), batch)]).long().to(dev)
            torch_loops.train_step(model, optimizer, tokens, m.num_codes, m.dtype)

    run(1)
    return steps * batch / timing.seconds(lambda: run(steps), repeats=repeats, warmup=0,
                                          sync=timing.torch_sync)


def measure(m: JaxModels, t: report.Table, batch: int, steps: int, repeats: int,
            with_torch: bool) -> None:
    data = models.random_ids(m, max(8 * batch, 1024))
    flops = 3 * m.forward_flops()
    jax_ips = jax_train.images_per_second(m, data, batch, steps, repeats)
    torch_ips = torch_images_per_second(m, data, batch, steps, repeats) if with_torch else None
    stated = device.stated_peak_tflops(m.dtype)
    measured = device.measured_matmul_tflops(m.dtype) * jax.device_count()
    for name, ips in (("maskgit_jax (jit)", jax_ips), ("PyTorch course (eager)", torch_ips)):
        if ips is None:
            continue
        tflops = ips * flops / 1e12
        t.add(m.name, m.dtype, batch, name, ips, ips * m.seq_len, tflops,
              None if stated is None else f"{100 * tflops / stated:.1f}%",
              f"{100 * tflops / measured:.1f}%", report.ratio(ips, torch_ips))
    t.notes.append(report.ceiling_note(m.name, m.dtype, device.matmul_ceiling_tflops(m.dtype), flops,
                                       torch_ips, device.cpu_target(TARGETS_VS_TORCH.get(m.name))))
