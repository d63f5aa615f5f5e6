"""What the benchmark runs on, its stated peak FLOP/s, and the peak measured with a large matmul."""

import functools
import os
import platform

import jax
import jax.numpy as jnp

from bench import models, timing

# Dense TFLOP/s from the vendors' data sheets: (substring of device_kind, {dtype: peak}).
# float32 on NVIDIA GPUs: XLA runs float32 matmuls as TF32 by default, so the TF32 peak.
STATED_PEAKS = [
    ("H100 PCIe", {"bfloat16": 756.0, "float32": 378.0}),
    ("H100", {"bfloat16": 989.4, "float32": 494.7}),
    ("H200", {"bfloat16": 989.4, "float32": 494.7}),
    ("A100", {"bfloat16": 312.0, "float32": 156.0}),
    ("L4", {"bfloat16": 121.0, "float32": 60.0}),
    ("TPU v4", {"bfloat16": 275.0}),
    ("TPU v5 lite", {"bfloat16": 197.0}),
    ("TPU v5e", {"bfloat16": 197.0}),
    ("TPU v5p", {"bfloat16": 459.0}),
    ("TPU v6 lite", {"bfloat16": 918.0}),
    ("TPU v6e", {"bfloat16": 918.0}),
]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def describe() -> dict:
    devices = jax.devices()
    kind = devices[0].device_kind
    info = dict(summary=f"{len(devices)} x {kind} ({devices[0].platform})",
                devices=f"{jax.device_count()} ({jax.process_count()} process(es)): "
                        + ", ".join(sorted({str(d.device_kind) for d in devices})),
                cpu=f"{_cpu_model()}, {len(os.sched_getaffinity(0))} usable cores",
                jax=f"jax {jax.__version__}")
    try:
        import torch
        info["torch"] = (f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
                         f"cuda={'yes' if torch.cuda.is_available() else 'no'}")
    except ImportError:
        info["torch"] = "not installed"
    return info


def accelerator() -> bool:
    return jax.devices()[0].platform != "cpu"


def cpu_target(target: float) -> float | None:
    """The project's speed-ups over PyTorch are CPU targets (accelerators have MFU targets)."""
    return None if accelerator() else target


def stated_peak_tflops(dtype: str) -> float | None:
    kind = jax.devices()[0].device_kind
    for name, peaks in STATED_PEAKS:
        if name in kind:
            peak = peaks.get(dtype)
            return None if peak is None else peak * jax.device_count()
    return None


def _matmul_size() -> tuple[int, int]:
    """(n, chain): square matmuls of side n, chained ``chain`` times (large on accelerators)."""
    return (8192, 10) if accelerator() else (1024, 4)


@functools.cache
def measured_matmul_tflops(dtype: str) -> float:
    """TFLOP/s of a chain of large square matmuls on the first device (n=8192 on accelerators)."""
    n, chain = _matmul_size()
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    b = (jax.random.normal(jax.random.key(1), (n, n), jnp.float32) / n ** 0.5).astype(dtype)

    @jax.jit
    def run(a, b):
        return jax.lax.fori_loop(0, chain, lambda _, x: x @ b, a)

    return 2 * n ** 3 * chain / timing.seconds(lambda: run(a, b), repeats=5) / 1e12


@functools.cache
def measured_torch_matmul_tflops(dtype: str) -> float | None:
    """The same matmul chain in PyTorch on its device (its BLAS may be faster than XLA's on a CPU);
    None without torch."""
    try:
        import torch
    except ImportError:
        return None
    n, chain = _matmul_size()
    dev, torch_dtype = models.torch_device(), getattr(torch, dtype)
    a = torch.randn(n, n, device=dev).to(torch_dtype)
    b = (torch.randn(n, n, device=dev) / n ** 0.5).to(torch_dtype)

    def run():
        x = a
        for _ in range(chain):
            x = x @ b
        return x

    with torch.no_grad():
        return 2 * n ** 3 * chain / timing.seconds(run, repeats=5, sync=timing.torch_sync) / 1e12


def matmul_ceiling_tflops(dtype: str) -> float:
    """The faster of the two measured matmul rates, over all devices: no implementation of a
    model made of matmuls runs faster than its FLOPs at this rate."""
    rates = [measured_matmul_tflops(dtype), measured_torch_matmul_tflops(dtype) or 0.0]
    return max(rates) * jax.device_count()
