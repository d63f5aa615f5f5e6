"""The training loop shared by both stages: steps, metrics, NaN check, checkpoints, progress bar.

The loop never waits for the device between steps: a step's metrics are fetched while the next
step runs (the NaN check is one step behind), except right before a checkpoint, whose loss is
checked first so that a NaN never overwrites the last good checkpoint.
"""

import math
import time
from typing import Callable, Iterable, Optional

import jax
from tqdm import tqdm

from maskgit_jax.train.checkpoint import Checkpoints
from maskgit_jax.train.metric_writer import MetricWriter


class NonFiniteLossError(FloatingPointError):
    pass


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

    def report(step: int, metrics) -> None:
        metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if not math.isfinite(metrics["loss"]):
            bar.close()
            checkpoints.wait_until_finished()  # the last good checkpoint is complete on disk
            raise NonFiniteLossError(
                f"{stage}: loss is {metrics['loss']} at step {step}; the last good checkpoint "
                f"(step {checkpoints.latest_step()}) in {checkpoints.directory} is kept")
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
            checkpoints.save(done, state)
        if on_sample is not None and sample_every and (done % sample_every == 0 or done == num_steps):
            on_sample(state, done)
    if pending is not None:
        report(*pending)
    checkpoints.wait_until_finished()
    bar.close()
    return state
