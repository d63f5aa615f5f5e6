"""The matmuls of one stage-2 training step, one by one: XLA's rate next to PyTorch's at each shape.

    python -m bench.matmul_shapes --config=small
    python -m bench.matmul_shapes --config=small --rounds=12 --out=bench/RESULTS.md

Every matmul of a training step of ``configs/faces.py:CONFIG`` (the forward projections, attention
and logits, and the two products of each in the backward pass) is timed alone, as one jitted
``jnp.matmul`` and as one ``torch.matmul`` in the same process, in turns, each number the fastest of
its rounds. The last rows add the shapes up: how long the matmuls of a forward pass and of a
whole step alone take at each library's kernel rates (a forward pass at ``--batch=64`` is one step
of T=8 decoding a batch of 64). That sum estimates the matmul time inside the program (there a
product may run a little faster or slower than alone; the rest of the step comes on top): where
XLA's sum alone exceeds a time target, e.g. PyTorch's whole step over 1.2, changes to the rest of
the program cannot meet it; only faster kernels can.
"""

import argparse
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from bench import device, models, report, timing
from maskgit_jax.configs import faces
from maskgit_jax.models import from_config


@dataclasses.dataclass(frozen=True)
class Matmul:
    """``count`` products per step of (batch, m, k) @ (batch, k, n)."""
    what: str
    batch: int
    m: int
    k: int
    n: int
    count: int
    forward: bool = True  # False: a product of the backward pass

    @property
    def flops(self) -> float:
        return 2.0 * self.batch * self.m * self.k * self.n


def forward_and_backward(what: str, batch: int, m: int, k: int, n: int, count: int) -> list[Matmul]:
    """A forward product and its two backward ones: the input's gradient (m, n) @ (n, k) and the
    weight's (k, m) @ (m, n)."""
    return [Matmul(what, batch, m, k, n, count),
            Matmul(f"{what}: input gradient", batch, m, n, k, count, forward=False),
            Matmul(f"{what}: weight gradient", batch, k, m, n, count, forward=False)]


def step_matmuls(config, batch_size: int) -> list[Matmul]:
    """The matmuls of one training step of the transformer in ``config`` (``models.config``)."""
    model = from_config.transformer(config)
    t, seq_len, vocab = config.transformer_model, model.seq_len, model.num_codes + 1
    rows, head = batch_size * seq_len, t.dim // t.heads
    return (forward_and_backward("query, key, value, output projections", 1, rows, t.dim, t.dim,
                                 4 * t.depth)
            + forward_and_backward("MLP in", 1, rows, t.dim, t.mlp_dim, t.depth)
            + forward_and_backward("MLP out", 1, rows, t.mlp_dim, t.dim, t.depth)
            + forward_and_backward("attention scores", batch_size * t.heads, seq_len, head,
                                   seq_len, t.depth)
            + forward_and_backward("attention values", batch_size * t.heads, seq_len, seq_len,
                                   head, t.depth)
            + forward_and_backward("prediction head", 1, rows, t.dim, t.dim, 1)
            + forward_and_backward("logits (tied embedding)", 1, rows, t.dim, vocab, 1))


def operands(mm: Matmul, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((mm.batch, mm.m, mm.k), dtype=np.float32)
    b = rng.standard_normal((mm.batch, mm.k, mm.n), dtype=np.float32)
    return a[0] if mm.batch == 1 else a, b[0] if mm.batch == 1 else b


def timers(mm: Matmul) -> dict:
    """{library: callable that runs the product once on the CPU and waits for it}, both warm."""
    import torch
    a, b = operands(mm)
    cpu = jax.devices("cpu")[0]  # the CPU's kernels, also on a machine with an accelerator
    ja, jb = jax.device_put(a, cpu), jax.device_put(b, cpu)
    product = jax.jit(jnp.matmul)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    runs = {"XLA": lambda: product(ja, jb).block_until_ready(), "PyTorch": lambda: torch.matmul(ta, tb)}
    for run in runs.values():
        run()
    return runs


def measure(config_name: str, batch_size: int, rounds: int, calls: int) -> report.Table:
    config = models.config(config_name)
    batch_size = batch_size or config.transformer.batch_size
    table = report.Table(
        f"The matmuls of one training step of {config_name} (batch {batch_size}), one at a time",
        ["matmul", "shape (batch) m x k x n", "per step", "XLA GFLOP/s", "PyTorch GFLOP/s",
         "XLA / PyTorch"],
        notes=[f"Each product alone on the CPU, jitted `jnp.matmul` and `torch.matmul` in "
               f"float32, in turns, fastest of {rounds} rounds of {calls} calls. 'Forward total' "
               "and 'step total': the time of all of the forward pass's or the step's products "
               "at these rates; the rest of a step (normalisation, softmax, GELU, loss, "
               "optimizer) comes on top."])
    totals = {"forward": {"XLA": 0.0, "PyTorch": 0.0}, "step": {"XLA": 0.0, "PyTorch": 0.0}}
    for mm in step_matmuls(config, batch_size):
        seconds = timing.fastest_seconds(timers(mm), rounds, calls)
        rates = {name: mm.flops / s / 1e9 for name, s in seconds.items()}
        for name, s in seconds.items():
            totals["step"][name] += s * mm.count
            if mm.forward:
                totals["forward"][name] += s * mm.count
        shape = f"({mm.batch}) {mm.m} x {mm.k} x {mm.n}" if mm.batch > 1 else f"{mm.m} x {mm.k} x {mm.n}"
        table.add(mm.what, shape, mm.count, rates["XLA"], rates["PyTorch"],
                  report.ratio(rates["XLA"], rates["PyTorch"]))
    for what, total in totals.items():
        table.add(f"{what} total (ms)", "", "", total["XLA"] * 1e3, total["PyTorch"] * 1e3,
                  report.ratio(1 / total["XLA"], 1 / total["PyTorch"]))
    return table


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.matmul_shapes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="small", choices=faces.VARIANTS,
                   help="configs/faces.py variant")
    p.add_argument("--batch", type=int, default=0, help="training batch; 0: the config's")
    p.add_argument("--rounds", type=int, default=8, help="turns of each library per shape")
    p.add_argument("--calls", type=int, default=20, help="products per turn")
    p.add_argument("--out", default="", help="file the table is appended to; '' prints only")
    args = p.parse_args()
    if args.batch < 0:
        p.error("--batch must be 0 (the config's) or a number of sequences")
    for option in ("rounds", "calls"):
        if getattr(args, option) < 1:
            p.error(f"--{option} must be at least 1")
    try:
        import torch  # noqa: F401  (the comparison's other side)
    except ImportError:
        p.error("PyTorch is not installed: pip install torch (bench only)")
    table = measure(args.config, args.batch, args.rounds, args.calls)
    command = "python -m bench.matmul_shapes " + " ".join(
        f"--{k}={v}" for k, v in vars(args).items() if k != "out")
    report.publish(report.header(command, device.describe()) + "\n" + table.markdown(), args.out or None)


if __name__ == "__main__":
    main()
