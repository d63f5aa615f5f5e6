"""The benchmark: speed tables of maskgit_jax next to the PyTorch course code, appended to a file.

    python -m bench.run --configs=tiny,small --out=bench/RESULTS.md           # CPU
    python -m bench.run --out=bench/RESULTS.md                                 # GPU: + lab, bf16
    python -m bench.run --quick --out=                                         # a smoke run

See bench/README.md for what each table measures and how to run it on a GPU machine.
"""

import argparse
import os
import shlex
import sys
import time

# JAX and PyTorch share the GPU here: JAX allocates as it goes instead of taking 75% up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402  (after the environment is set)

from bench import decode_speed, device, encode_speed, models, report, speedups, train_speed  # noqa: E402
from maskgit_jax.data import faces, test_sets  # noqa: E402

SECTIONS = ("encode", "train", "decode", "speedups")


def parse(argv):
    acc = device.accelerator()
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="tiny,small,lab" if acc else "tiny,small",
                   help="configs/faces.py variants (lab only on accelerators by default)")
    p.add_argument("--dtype", default="float32,bfloat16" if acc else "float32",
                   help="compute dtypes (parameters stay float32)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"any of {', '.join(SECTIONS)}")
    p.add_argument("--out", default="bench/RESULTS.md", help="file the tables are appended to; "
                   "empty: print only")
    p.add_argument("--test_set", default="faces", help="'faces' (built-in held-out faces with "
                   "brush masks), a folder in the lab layout (masked_image/, mask64/), an .npz test "
                   "set or emoji64/test (shipped)")
    p.add_argument("--num_images", type=int, default=747 if acc else 256,
                   help="test images (the lab's test set has 747)")
    p.add_argument("--loop_images", type=int, default=100 if acc else 32,
                   help="images the PyTorch batch-1 loop decodes (its rate is per image)")
    p.add_argument("--train_batch", type=int, default=0, help="0: the config's batch size")
    p.add_argument("--decode_batch", type=int, default=256 if acc else 64)
    p.add_argument("--train_steps", type=int, default=20 if acc else 10, help="updates per timing")
    p.add_argument("--repeats", type=int, default=3, help="timings per number (median)")
    p.add_argument("--no_torch", action="store_true", help="skip the PyTorch rows")
    p.add_argument("--quick", action="store_true",
                   help="a few images and steps: checks that everything runs, numbers are rough")
    args = p.parse_args(argv)
    if args.quick:
        args.num_images, args.loop_images, args.train_steps, args.repeats = 16, 2, 2, 1
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        p.error(f"--sections: unknown {sorted(unknown)}; use {', '.join(SECTIONS)}")
    return args


def test_set(args) -> tuple[np.ndarray, np.ndarray, str]:
    if args.test_set == "faces":
        images, known = faces.faces_test_set(args.num_images)
        return images, known, f"{len(images)} built-in held-out faces with brush masks"
    lab = test_sets.read_test_set(args.test_set)
    return (lab.images[: args.num_images], lab.known[: args.num_images],
            f"{min(len(lab), args.num_images)} images of {args.test_set}")


def peaks_table(dtypes) -> report.Table:
    t = report.Table("Device peak", ["dtype", "stated dense peak, all devices (TFLOP/s)",
                                     "measured matmul, one device (TFLOP/s)",
                                     "same matmul in PyTorch (TFLOP/s)"],
                     notes=["Matmul chains of square matrices (side 1024 on a CPU, 8192 on "
                            "accelerators). The faster measured rate is the ceiling used below: "
                            "a model's images/s cannot exceed it divided by its FLOPs per image."])
    for dtype in dtypes:
        t.add(dtype, device.stated_peak_tflops(dtype), device.measured_matmul_tflops(dtype),
              device.measured_torch_matmul_tflops(dtype))
    return t


def main(argv=None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    command = "python -m bench.run " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    dtypes, sections = args.dtype.split(","), args.sections.split(",")
    with_torch = not args.no_torch
    images, known, described = test_set(args)
    decode_batch = min(args.decode_batch, len(images))
    tables = [peaks_table(dtypes)]
    encode_t, train_t, speed_t = encode_speed.table(), train_speed.table(), speedups.table()
    ids_t, pass_t = decode_speed.tables()
    configs = []
    for name in args.configs.split(","):
        for dtype in dtypes:
            m = models.jax_models(name, dtype)
            configs.append(m.describe())
            torch_here = with_torch and (dtype == "float32" or device.accelerator())
            batch = args.train_batch or m.config.transformer.batch_size
            print(f"[bench] {m.describe()}, {dtype}", file=sys.stderr, flush=True)
            if "encode" in sections:
                encode_speed.measure(m, encode_t, images, decode_batch, args.repeats, torch_here)
            if "train" in sections:
                train_speed.measure(m, train_t, batch, args.train_steps, args.repeats, torch_here)
            if "decode" in sections:
                decode_speed.measure(m, ids_t, pass_t, images, known, decode_batch,
                                     args.loop_images, args.repeats, torch_here)
            if "speedups" in sections:
                speedups.measure(m, speed_t, models.random_ids(m, max(8 * batch, 1024)), images,
                                 known, batch, decode_batch, args.train_steps, args.repeats)
            models.release_torch_memory()
    tables += [t for t in (encode_t, train_t, ids_t, pass_t, speed_t) if t.rows]
    info = device.describe()
    info["test set"] = described
    info["configs"] = "; ".join(dict.fromkeys(configs))
    info["run time"] = f"{time.perf_counter() - started:.0f} s"
    text = report.header(command, info) + "\n" + "\n".join(t.markdown() for t in tables)
    report.publish(text, args.out)


if __name__ == "__main__":
    main()
