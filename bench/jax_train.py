"""Stage-2 training steps of maskgit_jax as train.py runs them, with switches for the speed-ups.

The default is what training does: cached token ids, the state donated, "auto" attention
(``models.transformer.resolved_attention``: the heads-first einsum on the CPU), batches prefetched
to the devices in a thread, and the loss fetched one step late (no wait for the device inside the
loop). Each switch turns one of those off.
"""

import dataclasses
import functools

import jax
import numpy as np

from bench import timing
from bench.models import JaxModels
from maskgit_jax.data import batches as batches_lib
from maskgit_jax import mesh as mesh_lib
from maskgit_jax.train import experiment, token_cache, transformer_stage


@dataclasses.dataclass(frozen=True)
class Switches:
    attention: str = "auto"     # models.transformer.ATTENTION
    donate: bool = True         # donate the state to the step (updated in place)
    encode_images: bool = False  # encode images with the frozen VQGAN inside every step (no cache)
    prefetch: bool = True       # assemble and copy batches in a background thread
    sync_each_step: bool = False  # fetch the loss right after each step (host round-trip)


def step_and_state(m: JaxModels, mesh, s: Switches):
    """(compiled ``step(state, batch) -> (state, metrics)``, a fresh state) with ``s``'s switches."""
    model, tx, opts = experiment.transformer_parts(m.config)
    model = model.clone(attention=s.attention)
    init, _ = experiment.transformer_init(m.config, mesh_lib.replicated(mesh))
    state = jax.jit(init, out_shardings=mesh_lib.replicated(mesh))()
    train = functools.partial(transformer_stage.train_step, model=model, tx=tx, opts=opts,
                              seed=m.config.seed)
    if not s.encode_images:
        return mesh_lib.jit_train_step(train, mesh, donate=s.donate), state
    # The frozen VQGAN's parameters are an argument of the step, like the state.
    mean, std = tuple(m.config.data.mean), tuple(m.config.data.std)
    replicated = mesh_lib.replicated(mesh)
    encode_and_train = jax.jit(
        lambda state, images, vq: train(state, token_cache.encode_ids(m.vqgan, vq, images, mean, std)),
        in_shardings=(replicated, mesh_lib.batch_sharded(mesh), replicated),
        out_shardings=(replicated, replicated), donate_argnums=0 if s.donate else ())
    vq_params = jax.device_put(m.vq_params, replicated)
    return (lambda state, images: encode_and_train(state, images, vq_params)), state


def images_per_second(m: JaxModels, data: np.ndarray, batch: int, steps: int, repeats: int,
                      s: Switches = Switches()) -> float:
    """Training images/s over ``steps`` updates on batches drawn from ``data`` (token ids, or uint8
    images when ``s.encode_images``), after two updates that compile."""
    mesh = mesh_lib.make_mesh()
    step, state = step_and_state(m, mesh, s)
    holder = {"state": state}
    rng = np.random.default_rng(0)

    def host_batches(count):
        for _ in range(count):
            yield data[rng.integers(0, len(data), batch)]

    put = lambda b: mesh_lib.put_batch(b, mesh)

    def run(count):
        device_batches = (batches_lib.prefetch_to_device(host_batches(count), put) if s.prefetch
                          else (put(b) for b in host_batches(count)))
        state, pending = holder["state"], None
        for b in device_batches:
            state, metrics = step(state, b)
            if s.sync_each_step:
                float(metrics["loss"])
            elif pending is not None:
                float(pending["loss"])  # the previous step's, while this one runs
            pending = metrics
        holder["state"] = state
        return state

    run(2)  # compiles
    return steps * batch / timing.seconds(lambda: run(steps), repeats=repeats, warmup=0)
