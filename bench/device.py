"""What the benchmark runs on, its stated peak FLOP/s, and the peak measured with a large matmul."""

import functools
import os
import platform

import jax
import jax.numpy as jnp

from bench import timing

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


def stated_peak_tflops(dtype: str) -> float | None:
    kind = jax.devices()[0].device_kind
    for name, peaks in STATED_PEAKS:
        if name in kind:
            peak = peaks.get(dtype)
            return None if peak is None else peak * jax.device_count()
    return None


@functools.cache
def measured_matmul_tflops(dtype: str) -> float:
    """TFLOP/s of a chain of large square matmuls on the first device (n=8192 on accelerators)."""
    n, chain = (8192, 10) if accelerator() else (1024, 4)
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
    b = (jax.random.normal(jax.random.key(1), (n, n), jnp.float32) / n ** 0.5).astype(dtype)

    @jax.jit
    def run(a, b):
        return jax.lax.fori_loop(0, chain, lambda _, x: x @ b, a)

    return 2 * n ** 3 * chain / timing.seconds(lambda: run(a, b), repeats=5) / 1e12
