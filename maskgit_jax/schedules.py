"""Mask schedules gamma(r): the fraction of unknown tokens still masked at progress r in [0, 1].

Every schedule is one small function ``gamma(r, num_unknown)`` on arrays (jnp or np), registered by name,
so training (how many tokens to mask) and decoding (how many to keep masked after each step) select it
with the same string everywhere, e.g. ``--schedule=square``. ``num_unknown`` is the number of unknown
tokens N per example; only ``log`` and ``exp`` depend on it.
"""

from typing import Callable

import jax.numpy as jnp

Schedule = Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]

_SCHEDULES: dict[str, Schedule] = {}


def register(name: str) -> Callable[[Schedule], Schedule]:
    """Adds a schedule under ``name``; a new schedule is one decorated function."""

    def add(fn: Schedule) -> Schedule:
        _SCHEDULES[name] = fn
        return fn

    return add


def _log2_n(num_unknown):
    # N <= 1 has log2(N) = 0; a tiny floor keeps the division finite and the clip does the rest.
    return jnp.maximum(jnp.log2(jnp.maximum(num_unknown, 1).astype(jnp.float32)), 1e-6)


@register("uniform")  # google-research/maskgit's name for it
@register("linear")
def linear(r, num_unknown=None):
    return 1.0 - r


@register("cosine")
def cosine(r, num_unknown=None):
    return jnp.cos(jnp.pi * r / 2)


@register("square")
def square(r, num_unknown=None):
    return 1.0 - r**2


@register("cubic")
def cubic(r, num_unknown=None):
    return 1.0 - r**3


@register("sqrt")
def sqrt(r, num_unknown=None):
    return 1.0 - jnp.sqrt(r)


@register("arccos")
def arccos(r, num_unknown=None):
    return (2 / jnp.pi) * jnp.arccos(r)


@register("log")
def log(r, num_unknown):
    # -log2(r) is +inf at r = 0; the clip maps it to 1 (everything masked).
    return jnp.clip(-jnp.log2(r) / _log2_n(num_unknown), 0.0, 1.0)


@register("exp")
def exp(r, num_unknown):
    return jnp.clip(1.0 - jnp.exp2(-_log2_n(num_unknown) * (1.0 - r)), 0.0, 1.0)


@register("sine_linear")
def sine_linear(r, num_unknown=None):
    return (1.0 - r) * (1.0 - 0.75 * jnp.sin(2 * jnp.pi * r))


@register("constant")
def constant(r, num_unknown=None):
    # Reveals everything in the first step (one-shot prediction).
    return jnp.zeros_like(r)


def names() -> list[str]:
    return sorted(_SCHEDULES)


def get(name: str) -> Schedule:
    """The schedule called ``name``; a clear error lists the valid names."""
    try:
        return _SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(names())}") from None


def gamma(name: str, r, num_unknown) -> jnp.ndarray:
    """gamma_name(r) as float32, broadcasting ``r`` against ``num_unknown``."""
    r = jnp.asarray(r, jnp.float32)
    return get(name)(r, jnp.asarray(num_unknown)).astype(jnp.float32) * jnp.ones_like(
        jnp.asarray(num_unknown, jnp.float32))
