"""sample.py's time on a lab-scale model for a few images of the lab test layout: load, compile, run.

    python -m bench.lab_sample_time                       # 4 images, T=8 and the T=1 comparison
    python -m bench.lab_sample_time --no-compare --images=16
    python -m bench.lab_sample_time --checkout=../other    # the same, with another checkout's maskgit_jax
    python -m bench.lab_sample_time --variant=small --images=68 --rows=nocache   # batches of 64 and a rest

The model has the course checkpoint's sizes (``configs/lab.py``: the 70.8M-parameter VQGAN, the
15-block transformer of width 768) with random weights (the time does not depend on them); it is
exported once into --work, with a lab-layout test folder of built-in faces with brush masks. Every
measurement runs in a fresh process, as a user's ``python sample.py --model=... --input=...``
does (``sampling.run``, what sample.py calls): a cold start, compilation included.

Rows: without the persistent compilation cache, then with it in an empty folder (the first process
fills it) and again (a second process reads it). compile = tracing, lowering and XLA compilation (or
reading from the cache), from JAX's own compile events; run = the rest of the sampling call (wall
times). The CPU time of the process (all threads) says how much of a wall time was waiting for a
busy machine.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE_ENV = "MASKGIT_JAX_COMPILE_CACHE"
# JAX's compile events (jax/_src/dispatch.py): tracing, lowering to MLIR, XLA compilation or reading it
# from the persistent cache.
COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")


def prepare(work: Path, images: int, variant: str) -> tuple[Path, Path]:
    """(model folder, lab-layout folder) under ``work``, made once (the lab model takes 0.6 GB)."""
    import jax
    import numpy as np
    from maskgit_jax import imageio, model_config, model_files
    from maskgit_jax.configs import lab
    from maskgit_jax.data import faces

    model, layout = work / f"{variant}_model", work / f"lab_test_{images}"
    if not (model / model_files.PARAMS_FILE).is_file():
        config = model_config.from_training_config(lab.get_config(variant))
        vqgan, transformer = config.vqgan(), config.bidirectional_transformer()
        size = config.image_size
        params = {
            "tokenizer": jax.jit(vqgan.init)(jax.random.key(0),
                                             np.zeros((1, size, size, 3), np.float32))["params"],
            "transformer": jax.jit(transformer.init)(jax.random.key(1),
                                                     np.zeros((1, transformer.seq_len), np.int32))["params"],
        }
        model_files.save(model, config, jax.device_get(params), overwrite=True)
    if not layout.is_dir():
        pictures, known = faces.faces_test_set(images, seed=1)
        imageio.write_lab_layout(layout, pictures, known)
    return model, layout


def child(model: str, layout: str, compare: bool, batch_size: int, started: float) -> dict:
    """One sample.py run in this process; the split of its time."""
    import jax

    compiles = []  # (program, seconds)
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, fun_name="?", **_:
        compiles.append((fun_name, seconds)) if event in COMPILE_EVENTS else None)
    import maskgit_jax
    from maskgit_jax import sampling
    from maskgit_jax.pipeline import MaskGIT

    imported = time.perf_counter()
    cpu_imported = time.process_time()
    loaded_model = MaskGIT.from_pretrained(model)
    loaded, cpu_loaded = time.perf_counter(), time.process_time()
    compiles.clear()  # loading traces the models' shapes: part of the load time
    with tempfile.TemporaryDirectory() as out:
        sampling.run(sampling.SampleOptions(output=str(Path(out) / "samples"), model=model,
                                            input=layout, compare=compare, batch_size=batch_size),
                     loaded_model)
    done, cpu_done = time.perf_counter(), time.process_time()
    compile_s = sum(seconds for _, seconds in compiles)
    by_program = {}
    for name, seconds in compiles:
        by_program[name] = by_program.get(name, 0.0) + seconds
    return dict(maskgit_jax=str(Path(maskgit_jax.__file__).parent), start=imported - started,
                load=loaded - imported, compile=compile_s, run=done - loaded - compile_s,
                total=done - started, cpu_load=cpu_loaded - cpu_imported, cpu_sample=cpu_done - cpu_loaded,
                peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
                slowest_compiles=sorted(by_program.items(), key=lambda kv: -kv[1])[:4])


def measure(args, cache: str, checkout: Path) -> dict:
    # Run as a script (not -m from ROOT), so that the checkout's maskgit_jax comes first on sys.path.
    env = dict(os.environ, PYTHONPATH=str(checkout), **{CACHE_ENV: cache})
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--model", str(args.model),
               "--layout", str(args.layout), "--compare" if args.compare else "--no-compare",
               f"--batch_size={args.batch_size}"]
    done = subprocess.run(command, env=env, cwd=checkout, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the measured process failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    started = time.perf_counter()
    p = argparse.ArgumentParser(prog="python -m bench.lab_sample_time", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=4)
    p.add_argument("--batch_size", type=int, default=64, help="sample.py's --batch_size")
    p.add_argument("--variant", default="lab", choices=("lab", "small", "tiny"),
                   help="model sizes: configs/lab.py's variant")
    p.add_argument("--compare", action=argparse.BooleanOptionalAction, default=True,
                   help="sample.py's --compare: also decode with T=1 (its default)")
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "maskgit_lab_bench"),
                   help="where the model and the test folder are made (once) and kept")
    p.add_argument("--checkout", default=str(ROOT), help="the checkout whose maskgit_jax is timed")
    p.add_argument("--rows", default="all", choices=("all", "nocache", "cache"),
                   help="the row without the cache, the two with it, or all three")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--layout", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.model, args.layout, args.compare, args.batch_size, started)))
        return
    args.model, args.layout = prepare(Path(args.work), args.images, args.variant)
    checkout = Path(args.checkout).resolve()
    rows = [("no compilation cache", measure(args, "0", checkout))] if args.rows != "cache" else []
    if args.rows != "nocache":
        cache = Path(tempfile.mkdtemp(prefix="jax_cache_"))
        try:
            rows.append(("cache, first process (empty cache)", measure(args, str(cache), checkout)))
            rows.append(("cache, second process", measure(args, str(cache), checkout)))
        finally:
            shutil.rmtree(cache)
    print(f"{args.variant} model, {args.images} images, batch size {args.batch_size}, "
          f"compare={args.compare}, maskgit_jax from {rows[0][1]['maskgit_jax']}")
    print("| process | start (imports) | load | compile | run | total | CPU time: load, sampling | "
          "peak memory |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['start']:.1f} s | {r['load']:.1f} s | {r['compile']:.1f} s | "
              f"{r['run']:.1f} s | {r['total']:.1f} s | {r['cpu_load']:.0f} s, {r['cpu_sample']:.0f} s | "
              f"{r['peak_rss_gb']:.1f} GB |")
    for name, r in rows:
        print(f"- {name}, slowest compilations: "
              + ", ".join(f"{program} {seconds:.1f} s" for program, seconds in r["slowest_compiles"]))


if __name__ == "__main__":
    main()
