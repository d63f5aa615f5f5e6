"""The training loop shared by both stages: steps, metrics, NaN check, checkpoints, progress bar.

The loop never waits for the device between steps: a step's loss is fetched while the next step
runs (the NaN check is one step behind), and the metrics are summed on the device; at a log point
the row written is their mean over the updates since the previous one, with the validation metrics
of the state at that point. Right before a checkpoint the step's loss and the updated state itself
are checked first, so a non-finite state is never saved (an update can overflow the parameters
while the loss it was computed from is still finite).
"""

import math
import time
from typing import Callable, Iterable, Optional

import jax
import jax.numpy as jnp
from tqdm import tqdm

from maskgit_jax.train.checkpoint import Checkpoints
from maskgit_jax.train.metric_writer import MetricWriter


class NonFiniteLossError(FloatingPointError):
    pass


@jax.jit
def _add(totals, metrics):
    return jax.tree.map(jnp.add, totals, metrics)


@jax.jit
def all_finite(state) -> jax.Array:
    """True when every floating-point array of ``state`` holds only finite values."""
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves])) if leaves else jnp.bool_(True)


def run(*, stage: str, state, train_step: Callable, batches: Iterable, start_step: int,
        num_steps: int, checkpoints: Checkpoints, writer: MetricWriter, log_every: int,
        checkpoint_every: int, examples_per_step: int,
        on_sample: Optional[Callable[[object, int], None]] = None, sample_every: int = 0,
        evaluate: Optional[Callable[[object], dict]] = None, progress: bool = True):
    """Runs ``train_step`` from ``start_step`` to ``num_steps``; returns the final state.

    Step numbers count finished updates: the state saved as step s has had s updates. Each metric
    row holds the mean of every metric over the updates since the previous row, and
    ``evaluate(state)`` (validation metrics, e.g. ``val_loss``) of the state it is written at.
    """
    bar = tqdm(total=num_steps, initial=start_step, desc=stage, disable=not progress,
               dynamic_ncols=True, leave=True)
    clock = {"time": time.perf_counter()}

    def stop(what: str, step: int) -> None:
        bar.close()
        checkpoints.wait_until_finished()  # the last good checkpoint is complete on disk
        raise NonFiniteLossError(
            f"{stage}: {what} at step {step}; the last good checkpoint "
            f"(step {checkpoints.latest_step()}) in {checkpoints.directory} is kept")

    def check(step: int, loss) -> None:
        loss = float(loss)
        if not math.isfinite(loss):
            stop(f"loss is {loss}", step)

    def log(step: int, totals, count: int, state) -> None:
        metrics = {k: float(v) / count for k, v in jax.device_get(totals).items()}
        if evaluate is not None:
            metrics.update({k: float(v) for k, v in jax.device_get(evaluate(state)).items()})
        now = time.perf_counter()
        metrics["examples_per_sec"] = count * examples_per_step / (now - clock["time"])
        clock.update(time=now)
        writer.scalars(step, metrics)
        bar.set_postfix(loss=f"{metrics['loss']:.4f}", ex_s=f"{metrics['examples_per_sec']:.1f}")

    pending = None        # (step, loss) of the last update, not yet checked
    totals, count = None, 0  # metrics summed on the device since the last log point
    for step, batch in zip(range(start_step, num_steps), batches):
        state, metrics = train_step(state, batch)
        totals, count = (metrics if totals is None else _add(totals, metrics)), count + 1
        if pending is not None:
            check(*pending)
        done = step + 1
        pending = (done, metrics["loss"])
        bar.update(1)
        if done % log_every == 0 or done == num_steps:
            check(*pending)
            pending = None
            log(done, totals, count, state)
            totals, count = None, 0
        if done % checkpoint_every == 0 or done == num_steps:
            if pending is not None:
                check(*pending)
                pending = None
            if not bool(all_finite(state)):
                stop("the updated parameters or optimizer state are not finite", done)
            checkpoints.save(done, state)
        if on_sample is not None and sample_every and (done % sample_every == 0 or done == num_steps):
            on_sample(state, done)
    if pending is not None:
        check(*pending)
    checkpoints.wait_until_finished()
    bar.close()
    return state
