"""Feature statistics and the Frechet distance between two Gaussians, in float64 NumPy.

    FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2))

For any factors with S1 = F1^T F1 and S2 = F2^T F2, the eigenvalues of S1 S2 are the squared
singular values of F1 F2^T (cyclic permutation: F1^T (F1 F2^T F2) and (F1 F2^T F2) F1^T share their
non-zero eigenvalues), so tr((S1 S2)^(1/2)) is the sum of the singular values of F1 F2^T. That needs
no matrix square root of a non-symmetric product (scipy.linalg.sqrtm, which loses accuracy when the
covariances are singular) and no square root of round-off-sized eigenvalues.

The factor is the centred features / sqrt(N - 1) when there are at most D samples (the usual case:
fewer images than the 2048 features; F1 F2^T is then only N1 x N2), else the symmetric square root
of the covariance.
"""

from __future__ import annotations

import numpy as np


def statistics(features_NxD: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) with ddof=1, in float64; needs N >= 2."""
    f = _check_features(features_NxD)
    return f.mean(axis=0), np.cov(f, rowvar=False, ddof=1)


def _check_features(features_NxD) -> np.ndarray:
    f = np.asarray(features_NxD, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"FID statistics need features (N >= 2, D), got shape {f.shape}")
    return f


def _psd_sqrt(sigma_DxD: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix.

    Eigenvalues below the round-off floor (D * eps * the largest, numpy's rank tolerance) count as 0:
    the ~1e-15 noise standing for each zero eigenvalue of a singular covariance would otherwise
    become ~1e-7 after the square root."""
    w, v = np.linalg.eigh((sigma_DxD + sigma_DxD.T) / 2)  # symmetrise away round-off
    floor = len(w) * np.finfo(np.float64).eps * max(w.max(initial=0.0), 0.0)
    return (v * np.sqrt(np.where(w > floor, w, 0.0))) @ v.T


def _trace_sqrt_product(factor1_AxD: np.ndarray, factor2_BxD: np.ndarray) -> float:
    """tr((S1 S2)^(1/2)) for S1 = F1^T F1, S2 = F2^T F2: the nuclear norm of F1 F2^T."""
    return float(np.linalg.svd(factor1_AxD @ factor2_BxD.T, compute_uv=False).sum())


def _distance(mu1, trace1, factor1, mu2, trace2, factor2) -> float:
    diff = mu1 - mu2
    return float(diff @ diff + trace1 + trace2 - 2.0 * _trace_sqrt_product(factor1, factor2))


def frechet_distance(mu1_D, sigma1_DxD, mu2_D, sigma2_DxD) -> float:
    """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), computed in float64."""
    mu1, mu2 = np.asarray(mu1_D, np.float64), np.asarray(mu2_D, np.float64)
    s1, s2 = np.asarray(sigma1_DxD, np.float64), np.asarray(sigma2_DxD, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(f"FID statistics disagree in shape: mu {mu1.shape} / {mu2.shape}, "
                         f"sigma {s1.shape} / {s2.shape}")
    return _distance(mu1, np.trace(s1), _psd_sqrt(s1), mu2, np.trace(s2), _psd_sqrt(s2))


def _mean_trace_factor(features_NxD: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Mean (D,), tr(covariance) and a factor F (N x D or D x D) with covariance = F^T F."""
    f = _check_features(features_NxD)
    mu = f.mean(axis=0)
    centred = (f - mu) / np.sqrt(len(f) - 1)
    trace = float(np.sum(centred * centred))
    if len(f) <= f.shape[1]:
        return mu, trace, centred
    return mu, trace, _psd_sqrt(centred.T @ centred)


def fid_from_features(features1_NxD: np.ndarray, features2_MxD: np.ndarray) -> float:
    """FID between two sets of Inception features (same as frechet_distance of their statistics)."""
    f1, f2 = _check_features(features1_NxD), _check_features(features2_MxD)
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"FID features disagree in dimension: {f1.shape} and {f2.shape}")
    return _distance(*_mean_trace_factor(f1), *_mean_trace_factor(f2))
