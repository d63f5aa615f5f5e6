"""Seamless compositing: a fill that keeps the decoded image's detail and meets the known pixels
without a seam.

The decoded image's colours drift from the picture's at a hole's border (a 4x4-pixel code is the
nearest of 512, not the exact colour), and 'paste' leaves that step where the known pixels begin.
Seamless cloning (Perez, Gangnet and Blake, "Poisson Image Editing", SIGGRAPH 2003) with the
decoded image as the source keeps the fill's gradients and takes its values at the border from the
picture: the fill is ``decoded + x``, where ``x`` equals ``picture - decoded`` on the known pixels
and is harmonic on the missing ones (each missing pixel the mean of its 4 neighbours inside the
image; the image's own border is a mirror, a zero normal derivative). Known pixels stay exact.

Solved by conjugate gradients, each image on its own (the system is symmetric positive definite
on every hole that touches a known pixel; a hole with none, e.g. a generated image, gets x = 0).
"""

import jax
import jax.numpy as jnp


def _neighbour_sum(x_HxWxC: jnp.ndarray) -> jnp.ndarray:
    """Sum of the 4 neighbours of each pixel that lie inside the image."""
    p = jnp.pad(x_HxWxC, ((1, 1), (1, 1), (0, 0)))
    return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]


def _harmonic_offset_one(offset_HxWxC, known_HxWx1, tol: float, max_iter: int):
    offset = jnp.where(known_HxWx1, offset_HxWxC, 0.0)
    degree_HxWx1 = _neighbour_sum(jnp.ones(known_HxWx1.shape, jnp.float32))

    def laplacian(y):  # the missing pixels' rows of the grid Laplacian; identity on known ones
        return jnp.where(known_HxWx1, y,
                         degree_HxWx1 * y - _neighbour_sum(jnp.where(known_HxWx1, 0.0, y)))

    rhs = jnp.where(known_HxWx1, 0.0, _neighbour_sum(offset))
    missing, _ = jax.scipy.sparse.linalg.cg(laplacian, rhs, tol=tol, maxiter=max_iter)
    return jnp.where(known_HxWx1, offset, missing)


def harmonic_offset(offset_BxHxWxC: jnp.ndarray, known_BxHxW: jnp.ndarray,
                    tol: float = 1e-6, max_iter: int = 0) -> jnp.ndarray:
    """float32 x (B,H,W,C): ``offset`` on the known pixels, harmonic on the missing ones.

    The missing pixels solve deg_p x_p - (sum of missing neighbours x_q) = (sum of known
    neighbours offset_q), deg_p counting the neighbours inside the image, by conjugate gradients
    to a residual ``tol`` times the right-hand side's; ``max_iter`` 0: 4 x the longer side (CG on a
    grid Laplacian needs about as many iterations as the widest hole has pixels across). One solve
    per image (vmap), so each stops at its own residual.
    """
    iters = max_iter or 4 * max(offset_BxHxWxC.shape[1:3])
    one = lambda d, k: _harmonic_offset_one(d, k, tol, iters)
    return jax.vmap(one)(offset_BxHxWxC.astype(jnp.float32), known_BxHxW[..., None])


def seamless_fill(input_BxHxWxC, decoded_BxHxWxC, known_BxHxW) -> jnp.ndarray:
    """float32 (B,H,W,C): the input on known pixels, ``decoded`` + the harmonic offset elsewhere."""
    given = input_BxHxWxC.astype(jnp.float32)
    decoded = decoded_BxHxWxC.astype(jnp.float32)
    x = harmonic_offset(given - decoded, known_BxHxW)
    return jnp.where(known_BxHxW[..., None], given, decoded + x)
