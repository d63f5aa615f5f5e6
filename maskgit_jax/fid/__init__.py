"""FID (Frechet Inception Distance) exactly as pytorch-fid computes it, in JAX (github.com/mseitzer/pytorch-fid).

    python -m maskgit_jax.fid DIR_A DIR_B [--batch_size=50] [--weights=PATH]

    from maskgit_jax.fid import fid_of_arrays, fid_of_folders
    fid_of_arrays(images_uint8_NxHxWx3, other_uint8_MxHxWx3)

Modules: inception (the flax FID Inception-v3), fetch (finding / downloading the weights file),
weights (torch names -> flax variables), features (preprocessing and batched extraction),
frechet (statistics and the distance), score (arrays and folders).
"""

from maskgit_jax.fid.fetch import FIDWeightsError
from maskgit_jax.fid.frechet import fid_from_features, frechet_distance, statistics
from maskgit_jax.fid.inception import FIDInceptionV3
from maskgit_jax.fid.score import (
    features_of_arrays,
    features_of_folder,
    fid_of_arrays,
    fid_of_folders,
    inception_variables,
)

__all__ = [
    "FIDInceptionV3", "FIDWeightsError", "features_of_arrays", "features_of_folder", "fid_from_features",
    "fid_of_arrays", "fid_of_folders", "frechet_distance", "inception_variables", "statistics",
]
