"""The training loop shared by both stages: steps, metrics, NaN check, checkpoints, progress bar.

The loop never waits for the device between steps: a step's metrics are fetched while the next
step runs (the NaN check is one step behind), except right before a checkpoint: then the step's
loss and the updated state itself are checked first, so a non-finite state is never saved (an
update can overflow the parameters while the loss it was computed from is still finite).
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
def all_finite(state) -> jax.Array:
    """True when every floating-point array of ``state`` holds only finite values."""
    leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves])) if leaves else jnp.bool_(True)


def run(*, stage: str, state, train_step: Callable, batches: Iterable, start_step: int,
        num_steps: int, checkpoints: Checkpoints, writer: MetricWriter, log_every: int,
        checkpoint_every: int, examples_per_step: int,
        on_sample: Optional[Callable[[object, int], None]] = None, sample_every: int = 0,
        progress: bool = True):
    """Runs ``train_step`` from ``start_step`` to ``num_steps``; returns the final state.

    Step numbers count finished updates: the state saved as step s has had s updates.
    """
    bar = tqdm(total=num_steps, initial=start_step, desc=stage, disable=not progress,
               dynamic_ncols=True, leave=True)
    clock = {"time": time.perf_counter(), "step": start_step}

    def stop(what: str, step: int) -> None:
        bar.close()
        checkpoints.wait_until_finished()  # the last good checkpoint is complete on disk
        raise NonFiniteLossError(
            f"{stage}: {what} at step {step}; the last good checkpoint "
            f"(step {checkpoints.latest_step()}) in {checkpoints.directory} is kept")

    def report(step: int, metrics) -> None:
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if not math.isfinite(metrics["loss"]):
            stop(f"loss is {metrics['loss']}", step)
        if step % log_every == 0 or step == num_steps:
            now = time.perf_counter()
            done = step - clock["step"]
            if done > 0:
                metrics["examples_per_sec"] = done * examples_per_step / (now - clock["time"])
            clock.update(time=now, step=step)
            writer.scalars(step, metrics)
            bar.set_postfix(loss=f"{metrics['loss']:.4f}",
                            ex_s=f"{metrics.get('examples_per_sec', float('nan')):.1f}")

    pending = None
    for step, batch in zip(range(start_step, num_steps), batches):
        state, metrics = train_step(state, batch)
        if pending is not None:
            report(*pending)
        pending = (step + 1, metrics)
        bar.update(1)
        done = step + 1
        if done % checkpoint_every == 0 or done == num_steps:
            report(*pending)
            pending = None
            if not bool(all_finite(state)):
                stop("the updated parameters or optimizer state are not finite", done)
            checkpoints.save(done, state)
        if on_sample is not None and sample_every and (done % sample_every == 0 or done == num_steps):
            on_sample(state, done)
    if pending is not None:
        report(*pending)
    checkpoints.wait_until_finished()
    bar.close()
    return state
