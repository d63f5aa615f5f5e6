"""Attention implementations side by side: training steps and T=8 decoding, timed interleaved.

    python -m bench.attention_speed --configs=tiny,small             # xla against auto
    python -m bench.attention_speed --configs=small --attentions=xla,einsum,auto --rounds=12

Both programs of every implementation are compiled first, then timed in turns (implementation by
implementation, round after round) and each number is the fastest of its rounds: on a shared
machine the other tenants only ever add time, so the minimum of interleaved runs compares the
implementations under the same conditions where medians of runs one after the other drift with
the machine's load. Training: ``--steps`` updates of ``jax_train`` (the default switches) on a
batch of the config's training batch size; decoding: one batch of half-masked random ids.
"""

import argparse
import dataclasses

import jax
import numpy as np

from bench import decode_speed, jax_train, models, report, timing
from maskgit_jax import mesh as mesh_lib


def programs(m: models.JaxModels, attention: str, mesh, batch, ids, steps: int):
    """(train, decode): callables that run ``steps`` updates / one T=8 decoding and wait for them."""
    step, state = jax_train.step_and_state(m, mesh, jax_train.Switches(attention=attention))
    holder = {"state": state}

    def train():
        state = holder["state"]
        for _ in range(steps):
            state, _ = step(state, batch)
        holder["state"] = jax.block_until_ready(state)

    m_attention = dataclasses.replace(m, transformer=m.transformer.clone(attention=attention))
    decode = lambda: jax.block_until_ready(decode_speed.jax_decode_ids(m_attention, ids, len(ids)))
    return train, decode


def measure(name: str, attentions: list[str], rounds: int, steps: int, decode_batch: int) -> list[str]:
    m = models.jax_models(name, "float32")
    mesh = mesh_lib.make_mesh()
    train_batch = m.config.transformer.batch_size
    batch = mesh_lib.put_batch(models.random_ids(m, train_batch), mesh)
    rng = np.random.default_rng(0)
    ids = models.random_ids(m, decode_batch)
    ids = np.where(rng.random(ids.shape) < 0.5, m.num_codes, ids).astype(np.int32)
    runs = {a: programs(m, a, mesh, batch, ids, steps) for a in attentions}
    for train, decode in runs.values():  # compile
        train(), decode()
    best = timing.fastest_seconds({(a, k): fn for a in attentions for k, fn in enumerate(runs[a])},
                                  rounds)
    images = (steps * train_batch, decode_batch)  # per timing of the training / decoding program
    rate = lambda a, k: images[k] / best[a, k]
    base = attentions[0]
    rows = []
    for a in attentions:
        rows.append(f"| {name} | {a} | {train_batch} | {rate(a, 0):,.0f} | "
                    f"{report.ratio(rate(a, 0), rate(base, 0))} | {decode_batch} | "
                    f"{rate(a, 1):,.1f} | {report.ratio(rate(a, 1), rate(base, 1))} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.attention_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="tiny,small", help="configs/faces.py variants")
    p.add_argument("--attentions", default="xla,auto",
                   help="models.transformer.ATTENTION values; ratios are against the first")
    p.add_argument("--rounds", type=int, default=8, help="interleaved timings of each program")
    p.add_argument("--steps", type=int, default=5, help="training updates per timing")
    p.add_argument("--decode_batch", type=int, default=64, help="images decoded per timing")
    args = p.parse_args()
    attentions = args.attentions.split(",")
    print(f"fastest of {args.rounds} interleaved rounds; {jax.devices()[0].device_kind}, "
          f"{jax.device_count()} device(s)")
    print(f"| config | attention | train batch | training images/s | vs {attentions[0]} "
          f"| decode batch | T=8 decoding images/s | vs {attentions[0]} |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in args.configs.split(","):
        for row in measure(name, attentions, args.rounds, args.steps, args.decode_batch):
            print(row, flush=True)


if __name__ == "__main__":
    main()
