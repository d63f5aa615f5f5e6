"""Where a stage-2 training step spends its time on this device, by kind of XLA operation.

    XLA_FLAGS=--xla_cpu_enable_xprof_traceme=true python -m bench.profile_step --config=small

Traces a few steps with ``jax.profiler`` and sums the device-thread time of each operation kind
(fusion names without their numeric suffix: ``ynn_fusion`` are XLA:CPU's matmul kernels). On the
CPU the per-operation events need the XLA flag above; without it only whole-program events appear.
"""

import argparse
import collections
import re
import tempfile
import time
from pathlib import Path

import jax

from bench import jax_train, models
from maskgit_jax import mesh as mesh_lib


def operation_times(trace_dir: str, steps: int) -> tuple[collections.Counter, collections.Counter]:
    """({kind: ns per step}, {kind: count per step}) over the device threads of a trace."""
    path = sorted(Path(trace_dir).rglob("*.xplane.pb"))[-1]
    times, counts = collections.Counter(), collections.Counter()
    for plane in jax.profiler.ProfileData.from_file(str(path)).planes:
        for line in plane.lines:
            on_device = plane.name.startswith("/device:") and line.name == "XLA Ops"
            if not (on_device or line.name.startswith(("tf_XLAEigen", "tf_XLAPjRtCpuClient"))):
                continue
            for event in line.events:
                if event.name.startswith(("ThunkExecutor", "end:")):
                    continue  # whole-program wrappers, not operations
                kind = re.sub(r"\.\d+$", "", event.name)
                times[kind] += event.duration_ns / steps
                counts[kind] += 1 / steps
    return times, counts


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile_step", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="small", help="configs/faces.py variant")
    p.add_argument("--steps", type=int, default=5, help="steps traced")
    p.add_argument("--top", type=int, default=15, help="operation kinds listed")
    args = p.parse_args()

    m = models.jax_models(args.config, "float32")
    mesh = mesh_lib.make_mesh()
    step, state = jax_train.step_and_state(m, mesh, jax_train.Switches())
    batch = mesh_lib.put_batch(models.random_ids(m, m.config.transformer.batch_size), mesh)
    for _ in range(3):  # compile and warm up
        state, _ = step(state, batch)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(args.steps):  # untraced: the tracer itself slows the steps down
        state, _ = step(state, batch)
    jax.block_until_ready(state)
    wall_ms = (time.perf_counter() - start) * 1e3 / args.steps
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir):
            for _ in range(args.steps):
                state, _ = step(state, batch)
            jax.block_until_ready(state)
        times, counts = operation_times(trace_dir, args.steps)
    total_ms = sum(times.values()) / 1e6
    print(f"{args.config}: {wall_ms:.1f} ms per step untraced; its operations take {total_ms:.1f} ms "
          f"of device-thread time per step ({total_ms / wall_ms:.2f} threads busy on average)")
    print(f"| operation kind | ms per step | share | per step |\n|---|---|---|---|")
    for kind, ns in times.most_common(args.top):
        print(f"| {kind} | {ns / 1e6:.2f} | {100 * ns / 1e6 / total_ms:.1f}% | {counts[kind]:.0f} |")


if __name__ == "__main__":
    main()
