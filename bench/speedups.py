"""What makes maskgit_jax fast, each measured before/after on the same model in the same run."""

import functools
import time

import jax
import numpy as np

from bench import decode_speed, device, jax_train, models, report, timing
from bench.jax_train import Switches
from bench.models import JaxModels
from maskgit_jax import decoding, inpaint

COLUMNS = ["config", "dtype", "what", "before", "after", "unit", "speed-up"]


def table() -> report.Table:
    return report.Table("What makes it fast (before -> after)", COLUMNS, notes=[
        "Training rows: stage-2 updates as in `jax_train` (cached ids, donation, fused attention "
        "choice, prefetch thread, loss fetched one step late); each row changes one of them.",
        "Host-loop decoder: one jitted decoding step per Python iteration, the host reading the "
        "step's result before the next (what a Python-loop decoder does), vs one lax.fori_loop."])


@functools.partial(jax.jit, static_argnames=("model", "cfg"))
def _host_loop_step(model, params, ids_BxL, rng, t, state, cfg):
    _, step = decoding.decode_parts(ids_BxL, rng, lambda ids: model.apply({"params": params}, ids),
                                    cfg)
    return step(t, state)


def host_loop_decode(m: JaxModels, ids: np.ndarray, batch: int) -> np.ndarray:
    cfg = decode_speed.decode_config(m)
    outs = []
    for i, ids_b in enumerate(decode_speed.full_batches(ids, batch)):
        key = jax.random.key(i)
        state, _ = decoding.decode_parts(ids_b, key, None, cfg)
        for t in range(cfg.num_steps):
            state = _host_loop_step(m.transformer, m.tr_params, ids_b, key, t, state, cfg)
            int(np.sum(np.asarray(state.ids_BxL) == m.num_codes))  # the host looks at each step
        outs.append(np.asarray(decoding.finish(state, cfg).ids_BxL))
    return np.concatenate(outs)[: len(ids)]


def _compile_once(m: JaxModels, images, known, batch: int):
    """(seconds of the first pass, of a later pass with new images and parameters, compilations)."""
    cfg = inpaint.InpaintConfig(decode=decode_speed.decode_config(m),
                                mean=tuple(m.config.data.mean), std=tuple(m.config.data.std))
    run = lambda imgs, params: inpaint.inpaint_batched(m.vqgan, m.vq_params, m.transformer, params,
                                                       imgs, known, cfg, jax.random.key(0), batch)
    jax.clear_caches()
    start = time.perf_counter()
    run(images, m.tr_params)
    first = time.perf_counter() - start
    new_params = jax.tree.map(lambda x: x * 1.01, m.tr_params)
    later = timing.seconds(lambda: run(images[::-1].copy(), new_params), repeats=1, warmup=0)
    return first, later, inpaint._inpaint_core._cache_size()


def measure(m: JaxModels, t: report.Table, ids_data: np.ndarray, images: np.ndarray,
            known: np.ndarray, train_batch: int, decode_batch: int, steps: int,
            repeats: int) -> None:
    rate = lambda mm, data, s: jax_train.images_per_second(mm, data, train_batch, steps, repeats, s)
    row = lambda what, before, after, unit="images/s": t.add(
        m.name, m.dtype, what, before, after, unit, report.ratio(after, before))
    base = rate(m, ids_data, Switches())
    row("stage 2: VQGAN encode in every step -> token cache",
        rate(m, images, Switches(encode_images=True)), base)
    if m.dtype == "bfloat16":
        row("float32 compute -> bfloat16 compute (float32 parameters)",
            rate(models.jax_models(m.name, "float32"), ids_data, Switches()), base)
    if device.accelerator():
        einsum = rate(m, ids_data, Switches(attention="einsum"))
        for attention in ("xla", "cudnn", "auto"):
            if attention == "cudnn" and m.dtype == "float32":
                continue  # cuDNN's fused attention takes 16-bit inputs only
            after = base if attention == "auto" else rate(m, ids_data, Switches(attention=attention))
            row(f"attention: einsum softmax -> dot_product_attention ({attention})", einsum, after)
    else:  # "auto" is the heads-first einsum on the CPU
        row("attention: dot_product_attention (xla) -> einsum, heads first (auto on the CPU)",
            rate(m, ids_data, Switches(attention="xla")), base)
    row("training: no donation -> state donated", rate(m, ids_data, Switches(donate=False)), base)
    row("training: loss fetched every step -> one step late",
        rate(m, ids_data, Switches(sync_each_step=True)), base)
    row("training: batches copied in the loop -> prefetched in a thread",
        rate(m, ids_data, Switches(prefetch=False)), base)

    ids, _ = decode_speed.masked_ids(m, images, known)
    host = len(ids) / timing.seconds(lambda: host_loop_decode(m, ids, decode_batch), repeats=repeats)
    fused = len(ids) / timing.seconds(lambda: decode_speed.jax_decode_ids(m, ids, decode_batch),
                                      repeats=repeats)
    row(f"decoding T={decode_speed.TOTAL_ITER}: host loop synced per step -> one fori_loop",
        host, fused)
    first, later, compiles = _compile_once(m, images, known, decode_batch)
    t.add(m.name, m.dtype, "inpainting pass: first call (compiles) -> later call (new images and "
          f"parameters; {compiles} compilation(s) in all)", first, later, "seconds",
          f"{first / later:.1f}x")
