"""Built-in procedural data: cartoon faces and random-walk brush masks (NumPy only, no download).

Faces are drawn at the target resolution with analytic anti-aliasing: every shape is a signed distance
field d (design units, negative inside) and its pixel coverage is clip(0.5 - d / pixel, 0, 1). That gives
smooth edges like 4x supersampling at a fraction of the cost (about 900 faces/s on one core).

Design space is 64x64 units whatever `size` is, so a face looks the same at any resolution.

Structure the models can learn: each face is left-right symmetric about its own centre (paired features are
drawn once in "folded" coordinates x' = cx + |x - cx|, so a missing eye is exactly the mirror of the other),
centred with a small jitter. Variety: face shape, skin, eyes, brows, nose, mouth, hair style and colour,
hats, glasses, earrings, beards, clothes and a flat or two-tone background.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["render_face", "random_brush_mask", "faces_split", "faces_test_set", "SPLITS"]

DESIGN = 64.0  # all geometry below is in a 64x64 design space

# Split ids: face seeds are 3*k + split_id, so the splits never share a seed.
SPLITS = {"train": 0, "val": 1, "test": 2}

SKIN = np.array([
    [255, 224, 196], [241, 194, 160], [224, 172, 128], [198, 140, 100], [170, 112, 76],
    [141, 85, 54], [110, 66, 42], [80, 50, 34], [255, 205, 178], [232, 190, 150],
], np.float32)
FANTASY_SKIN = np.array([[140, 200, 120], [130, 170, 230], [200, 160, 220], [250, 230, 120]], np.float32)
HAIR = np.array([
    [20, 16, 14], [60, 38, 24], [105, 66, 36], [150, 90, 40], [190, 140, 70], [230, 200, 120],
    [170, 60, 30], [140, 140, 140], [235, 235, 230], [90, 30, 20],
], np.float32)
DYED_HAIR = np.array([[230, 90, 170], [60, 120, 230], [60, 190, 120], [150, 70, 200]], np.float32)
IRIS = np.array([
    [90, 55, 30], [50, 30, 20], [60, 120, 190], [70, 140, 80], [130, 110, 60], [110, 120, 130],
], np.float32)
WHITE = np.array([250, 250, 248], np.float32)
DARK = np.array([25, 20, 22], np.float32)
MOUTH_DARK = np.array([95, 25, 35], np.float32)
METALS = np.array([[230, 190, 60], [200, 200, 210], [220, 60, 80], [60, 160, 230]], np.float32)


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Design-space coordinates of pixel centres, two float32 (size, size) arrays (x, y)."""
    c = ((np.arange(size, dtype=np.float32) + 0.5) * (DESIGN / size)).astype(np.float32)
    return np.broadcast_to(c[None, :], (size, size)), np.broadcast_to(c[:, None], (size, size))


# --- signed distance fields (design units, < 0 inside) ---------------------------------------------


def _ellipse(x, y, cx, cy, rx, ry, p=2.0, angle=0.0):
    """Superellipse |u/rx|^p + |v/ry|^p = 1 (ry may be an array: egg shapes). Radial distance, exact on circles."""
    u, v = x - cx, y - cy
    if angle:
        c, s = math.cos(angle), math.sin(angle)
        u, v = c * u + s * v, c * v - s * u
    if p == 2.0:
        f = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    else:
        f = (np.abs(u / rx) ** p + np.abs(v / ry) ** p) ** (1.0 / p)
    r = np.sqrt(u * u + v * v)
    return r - r / np.maximum(f, 1e-6)


def _segment(x, y, x0, y0, x1, y1, r):
    """Capsule of radius r around the segment (x0,y0)-(x1,y1)."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy + 1e-9), 0.0, 1.0)
    return np.hypot(x - x0 - t * dx, y - y0 - t * dy) - r


def _box(x, y, cx, cy, hw, hh, r=0.0):
    """Axis-aligned box with half sizes (hw, hh) and corner radius r."""
    qx, qy = np.abs(x - cx) - hw + r, np.abs(y - cy) - hh + r
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r


def _curve(x, y, cx, cy, half_w, k, t):
    """Stroke of half thickness t along y = cy + k (x - cx)^2 for |x - cx| <= half_w.

    Image y points down, so k < 0 bends the ends up (a smile) and k > 0 bends them down (an arch).
    """
    dx = x - cx
    d = np.abs(y - cy - k * dx * dx) / np.sqrt(1 + (2 * k * dx) ** 2) - t
    return np.maximum(d, np.abs(dx) - half_w)


class _Canvas:
    """Float RGB image plus the coordinate grids; shapes are painted back to front."""

    def __init__(self, size: int, cx: float):
        self.x, self.y = _grid(size)
        self.xf = cx + np.abs(self.x - cx)  # folded x: a shape on the right is mirrored to the left
        self.px = DESIGN / size
        self.img = np.zeros((size, size, 3), np.float32)

    def cov(self, d: np.ndarray) -> np.ndarray:
        """Pixel coverage in [0, 1] of the shape with signed distance d (the anti-aliasing)."""
        return np.clip(0.5 - d / self.px, 0.0, 1.0)

    def paint(self, alpha: np.ndarray, colour, opacity: float = 1.0) -> None:
        """Blend `colour` over the image with per-pixel alpha (size, size)."""
        # Blend only the rows the shape touches: most features are small, and blending is the hot spot.
        rows = np.flatnonzero(alpha.any(axis=1))
        if rows.size == 0:
            return
        r0, r1 = rows[0], rows[-1] + 1
        a = alpha[r0:r1, :, None] * np.float32(opacity)
        img = self.img[r0:r1]
        img += a * (np.asarray(colour, np.float32) - img)

    def fill(self, d: np.ndarray, colour, opacity: float = 1.0) -> np.ndarray:
        a = self.cov(d)
        self.paint(a, colour, opacity)
        return a


def _pick(rng: np.random.Generator, palette: np.ndarray, jitter: float = 10.0) -> np.ndarray:
    return np.clip(palette[rng.integers(len(palette))] + rng.normal(0, jitter, 3), 0, 255)


def _random_colour(rng: np.random.Generator, lo: float = 20, hi: float = 235) -> np.ndarray:
    """A random colour, half the time desaturated (backgrounds and clothes look more natural)."""
    c = rng.uniform(lo, hi, 3)
    if rng.random() < 0.5:
        c = 0.5 * c + 0.5 * c.mean()
    return c.astype(np.float32)


def render_face(seed: int, size: int = 64) -> np.ndarray:
    """Render one procedural face, deterministic in `seed`.

    Returns uint8 (size, size, 3) RGB.
    """
    rng = np.random.default_rng(seed)
    u = rng.uniform

    # Layout (design units). The face is centred with a small jitter.
    cx, cy = 32 + u(-2.5, 2.5), 31 + u(-2.5, 2.5)
    half_px = DESIGN / size / 2
    cx = round(cx / half_px) * half_px  # on the half-pixel grid, mirroring about cx maps pixels onto pixels
    rx, ry_top, ry_bot = u(13.5, 18.5), u(17, 21), u(16, 22)
    jaw = u(2.0, 2.8)  # superellipse exponent: round to square jaw
    skin = _pick(rng, FANTASY_SKIN if rng.random() < 0.06 else SKIN, 8)
    hair = _pick(rng, DYED_HAIR if rng.random() < 0.1 else HAIR, 10)
    hair_style = rng.choice(["bald", "short", "bangs", "long", "afro", "bun", "mohawk", "pigtails"],
                            p=[0.07, 0.2, 0.17, 0.2, 0.1, 0.08, 0.06, 0.12])
    has_hat = rng.random() < 0.18
    has_glasses = rng.random() < 0.25
    has_earrings = rng.random() < 0.2
    beard = rng.choice(["none", "beard", "moustache", "stubble"], p=[0.75, 0.1, 0.1, 0.05])

    cv = _Canvas(size, cx)
    x, y, xf = cv.x, cv.y, cv.xf

    # Background: flat, or a two-tone gradient (vertical, diagonal or radial).
    bg = _random_colour(rng)
    if rng.random() < 0.5:
        bg2 = _random_colour(rng)
        kind = rng.integers(3)
        if kind == 0:
            t = y / DESIGN
        elif kind == 1:
            t = (x + y) / (2 * DESIGN)
        else:
            t = np.clip(np.hypot(x - cx, y - 32) / 45, 0, 1)
        cv.img[:] = bg + t[..., None] * (bg2 - bg)
    else:
        cv.img[:] = bg

    ry = np.where(y < cy, ry_top, ry_bot).astype(np.float32)  # egg-shaped head
    head_top = cy - ry_top

    # Hair behind the head.
    if hair_style == "long":
        length = u(8, 24)
        cv.fill(_box(x, y, cx, cy + length / 2, rx + u(2, 5), ry_top + length / 2, r=rx * 0.9), hair)
    elif hair_style == "afro":
        rr = np.hypot(x - cx, y - cy + 4)
        ang = np.arctan2(np.abs(x - cx), y - cy + 4)  # symmetric angle
        big = rx + u(6, 9)
        cv.fill(rr - big * (1 + 0.05 * np.cos(ang * 14)), hair)
    elif hair_style == "pigtails":
        px, py, pr = rx + u(1, 4), cy - u(2, 8), u(4, 6.5)
        cv.fill(_ellipse(xf, y, cx + px, py, pr, pr * u(1.0, 1.8)), hair)
    elif hair_style == "bun":
        br = u(5, 8)
        cv.fill(_ellipse(x, y, cx, head_top - br * 0.5, br, br * 0.9), hair)

    # Clothes, neck, ears.
    clothes = _random_colour(rng)
    chin = cy + ry_bot
    cv.fill(_ellipse(x, y, cx, chin + u(14, 18), u(22, 30), 14), clothes)
    neck_w = rx * u(0.35, 0.5)
    cv.fill(_box(x, y, cx, chin, neck_w, 8, r=2), skin * 0.85)
    if rng.random() < 0.5:  # neckline
        cv.fill(_curve(x, y, cx, chin + 9, neck_w + 1.5, -0.12, 0.9), clothes * 0.7)
    ear_y, ear_r = cy + u(-1, 3), u(3, 4.5)
    cv.fill(_ellipse(xf, y, cx + rx - 0.5, ear_y, ear_r * 0.7, ear_r), skin * 0.95)

    # Face with a little roundness shading.
    face = cv.fill(_ellipse(x, y, cx, cy, rx, ry, p=jaw), skin)
    shade = 1 - 0.12 * face * np.minimum(((x - cx) / rx) ** 2 + np.maximum(y - cy, 0) ** 2 / (2 * ry_bot**2), 1)
    cv.img *= shade[..., None]

    eye_y, eye_dx = cy + u(-2.5, 1), rx * u(0.33, 0.5)
    ex = cx + eye_dx
    mouth_y = cy + ry_bot * u(0.45, 0.6)
    nose_y = (eye_y + mouth_y) / 2 + u(0, 2)

    if rng.random() < 0.35:  # blush
        br = u(2.5, 4)
        a = np.clip(1 - np.hypot(xf - ex - 1, y - nose_y - 1) / br, 0, 1)
        cv.paint(a, [240, 110, 120], 0.45)

    # Facial hair (under the mouth, so the mouth stays visible).
    if beard == "beard":
        d = np.maximum(_ellipse(x, y, cx, cy, rx + 0.3, ry, p=jaw), nose_y + 1.5 - y)
        cv.fill(d, hair * 0.9)
    elif beard == "stubble":
        d = np.maximum(_ellipse(x, y, cx, cy, rx, ry, p=jaw), mouth_y - 3 - y)
        cv.fill(d, hair, 0.35)

    # Nose.
    nose = rng.integers(4)
    nose_col = skin * 0.72
    if nose == 0:  # nostrils
        cv.fill(_ellipse(xf, y, cx + 1.3, nose_y, 0.8, 0.6), nose_col)
    elif nose == 1:  # bridge line
        cv.fill(_segment(x, y, cx, nose_y - 4, cx, nose_y, 0.55), nose_col)
    elif nose == 2:  # soft button
        cv.fill(_ellipse(x, y, cx, nose_y, u(1.5, 2.5), u(1.2, 1.8)), skin * 0.85)
    else:  # curved tip
        cv.fill(_curve(x, y, cx, nose_y, u(1.5, 2.5), 0.35, 0.5), nose_col)

    # Mouth.
    mouth = rng.choice(["smile", "neutral", "open", "grin", "frown"], p=[0.35, 0.2, 0.2, 0.15, 0.1])
    mw = u(3.5, 6.5)
    lip = np.clip(MOUTH_DARK + rng.normal(0, 15, 3), 0, 255)
    if rng.random() < 0.2:
        lip = np.array([200, 30, 60], np.float32)
    if mouth == "smile":
        cv.fill(_curve(x, y, cx, mouth_y, mw, -u(0.06, 0.14), 0.6), lip)
    elif mouth == "frown":
        cv.fill(_curve(x, y, cx, mouth_y + 1, mw * 0.8, u(0.05, 0.1), 0.6), lip)
    elif mouth == "neutral":
        cv.fill(_segment(x, y, cx - mw * 0.8, mouth_y, cx + mw * 0.8, mouth_y, 0.65), lip)
    elif mouth == "open":
        a = cv.fill(_ellipse(x, y, cx, mouth_y, mw * 0.6, u(1.8, 3)), lip)
        cv.paint(np.minimum(a, cv.cov(_ellipse(x, y, cx, mouth_y + 2.2, mw * 0.35, 1.3))), [220, 90, 100])
    else:  # grin: lower half disc with teeth
        d = np.maximum(_ellipse(x, y, cx, mouth_y - 1, mw, u(3, 4.5)), mouth_y - 1 - y)
        a = cv.fill(d, lip)
        cv.paint(np.minimum(a, cv.cov(mouth_y - y)), WHITE)
    if beard == "moustache":
        cv.fill(_curve(x, y, cx, mouth_y - 2.5, u(3, 5), 0.08, 0.9), hair * 0.9)

    # Eyes (folded: exact mirror images).
    eye = rng.choice(["round", "almond", "dot", "happy", "sleepy"], p=[0.35, 0.25, 0.2, 0.1, 0.1])
    iris = _pick(rng, IRIS, 12)
    er = u(2.6, 3.8)
    gaze = u(-0.6, 0.6)  # vertical only: horizontal gaze would break the mirror symmetry
    tilt = u(-0.25, 0.25)
    if eye in ("round", "almond", "sleepy"):
        ery = er if eye == "round" else er * u(0.55, 0.75)
        cv.fill(_ellipse(xf, y, ex, eye_y, er + 0.5, ery + 0.5, angle=tilt), DARK)  # outline
        white = cv.fill(_ellipse(xf, y, ex, eye_y, er, ery, angle=tilt), WHITE)
        ir = min(er, ery * 1.3) * u(0.55, 0.75)
        cv.paint(np.minimum(white, cv.cov(_ellipse(xf, y, ex, eye_y + gaze, ir, ir))), iris)
        cv.paint(np.minimum(white, cv.cov(_ellipse(xf, y, ex, eye_y + gaze, ir * 0.5, ir * 0.5))), DARK)
        cv.fill(_ellipse(xf, y, ex + ir * 0.35, eye_y + gaze - ir * 0.35, 0.55, 0.55), WHITE)  # highlight
        if eye == "sleepy":  # upper lid in skin colour
            lid = np.maximum(_ellipse(xf, y, ex, eye_y, er + 0.6, ery + 0.6, angle=tilt), y - eye_y + 0.3)
            cv.fill(lid, skin * 0.92)
            cv.fill(_segment(xf, y, ex - er, eye_y - 0.3, ex + er, eye_y - 0.3, 0.45), DARK)
    elif eye == "dot":
        cv.fill(_ellipse(xf, y, ex, eye_y, er * 0.45, er * 0.65), DARK)
        cv.fill(_ellipse(xf, y, ex + 0.5, eye_y - 0.6, 0.45, 0.45), WHITE)
    else:  # happy: closed arcs
        cv.fill(_curve(xf, y, ex, eye_y + 0.5, er * 0.9, 0.18, 0.55), DARK)

    # Brows.
    brow_y = eye_y - u(4.5, 6.5)
    bw, bslope = u(2.2, 3.8), u(-0.35, 0.3)
    brow_col = hair * 0.8 if hair_style != "bald" or rng.random() < 0.5 else skin * 0.5
    cv.fill(_segment(xf, y, ex - bw, brow_y + bslope * bw, ex + bw, brow_y - bslope * bw, u(0.5, 1.0)), brow_col)

    # Hair in front: a cap above a hairline that drops towards the temples.
    if hair_style != "bald":
        hair_rx, hair_ry = rx + u(0.8, 2.0), ry_top + u(0.8, 2.5)
        cap = _ellipse(x, y, cx, cy, hair_rx, hair_ry, p=jaw)
        if hair_style == "bangs":
            line = brow_y - u(0.5, 2.5) + 0.02 * (x - cx) ** 2
        elif hair_style == "mohawk":
            line = np.full_like(x, head_top + 4)
            cap = np.maximum(_ellipse(x, y, cx, cy, hair_rx, hair_ry + 3), np.abs(x - cx) - u(2, 3.5))
        else:
            line = head_top + ry_top * u(0.25, 0.45) + u(0.03, 0.08) * (x - cx) ** 2
        line = np.minimum(line, eye_y - 1)  # never cover the eyes
        cv.fill(np.maximum(cap, y - line), hair)
        if hair_style == "bun":
            cv.fill(_segment(x, y, cx - 2, head_top - 0.5, cx + 2, head_top - 0.5, 0.8), hair * 0.7)

    # Accessories.
    if has_hat:
        hat = _random_colour(rng)
        top = head_top - u(0, 3)
        if rng.random() < 0.5:  # brimmed hat
            brim_y = head_top + u(2, 5)
            cv.fill(_box(x, y, cx, brim_y, rx + u(3, 7), 1.3, r=1), hat * 0.8)
            cv.fill(_box(x, y, cx, (top + brim_y) / 2 - 2, rx * u(0.6, 0.8), (brim_y - top) / 2 + 2, r=2), hat)
        else:  # beanie
            band_y = head_top + u(5, 8)
            cv.fill(np.maximum(_ellipse(x, y, cx, band_y, rx + 1.5, band_y - top + 1), y - band_y), hat)
            cv.fill(_box(x, y, cx, band_y, rx + 1.5, 1.5, r=1), hat * 0.75)
    if has_glasses:
        frame = DARK if rng.random() < 0.6 else _random_colour(rng)
        gr = er + u(1.5, 2.5)
        round_lens = rng.random() < 0.5
        lens = (_ellipse(xf, y, ex, eye_y, gr, gr * 0.85) if round_lens
                else _box(xf, y, ex, eye_y, gr, gr * 0.75, r=1.5))
        if rng.random() < 0.3:  # sunglasses
            cv.fill(lens, [30, 30, 40], 0.9)
        cv.fill(np.abs(lens) - 0.45, frame)
        inner = ex - gr
        cv.fill(_segment(xf, y, cx, eye_y - 0.5, inner + 0.3, eye_y - 0.5, 0.45), frame)
        cv.fill(_segment(xf, y, ex + gr - 0.3, eye_y - 0.5, cx + rx + 0.5, eye_y - 1, 0.45), frame)
    if has_earrings:
        metal = _pick(rng, METALS, 10)
        if rng.random() < 0.5:
            cv.fill(_ellipse(xf, y, cx + rx - 0.5, ear_y + ear_r + 1.2, 1.1, 1.1), metal)
        else:
            cv.fill(np.abs(_ellipse(xf, y, cx + rx - 0.5, ear_y + ear_r + 2, 1.8, 1.8)) - 0.4, metal)

    return np.clip(cv.img + 0.5, 0, 255).astype(np.uint8)


def random_brush_mask(
    rng: np.random.Generator,
    size: int = 64,
    min_missing: float = 0.10,
    max_missing: float = 0.40,
) -> np.ndarray:
    """Random-walk brush mask like the inpainting lab's: bool (size, size), True = known, False = missing.

    One brush walks in small steps with a drifting direction and a slowly changing radius (so the hole is
    one connected blob of thick strokes, like the lab's), stamping discs until the missing fraction
    reaches a target drawn uniformly in [min_missing, max_missing]. The last stamp is trimmed (pixels
    nearest the previous brush position first, so it stays attached), so the missing pixel count equals
    the target exactly and the bounds hold for every mask.
    """
    if not 0.0 <= min_missing <= max_missing <= 1.0:
        raise ValueError(f"need 0 <= min_missing <= max_missing <= 1, got {min_missing}, {max_missing}")
    n = size * size
    lo, hi = math.ceil(min_missing * n), math.floor(max_missing * n)
    if lo > hi:
        raise ValueError(f"no pixel count of a {size}x{size} mask lies in [{min_missing}, {max_missing}]")
    target = int(np.clip(round(rng.uniform(min_missing, max_missing) * n), lo, hi))

    scale = size / 64.0
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    missing = np.zeros((size, size), bool)
    count = 0
    px, py = rng.uniform(0.15 * size, 0.85 * size, 2)
    qx, qy = px, py  # previous brush position
    angle = rng.uniform(0, 2 * math.pi)
    radius = rng.uniform(2.0, 4.0)
    while True:
        r = radius * scale
        # Stamp on a small window around the brush: cheap, and the mask stays exact.
        y0, y1 = max(int(py - r - 1), 0), min(int(py + r + 2), size)
        x0, x1 = max(int(px - r - 1), 0), min(int(px + r + 2), size)
        wx, wy = xs[y0:y1, x0:x1], ys[y0:y1, x0:x1]
        new = ((wx - px) ** 2 + (wy - py) ** 2 <= r * r) & ~missing[y0:y1, x0:x1]
        k = int(new.sum())
        if count + k >= target:
            iy, ix = np.nonzero(new)
            order = np.argsort((wx[iy, ix] - qx) ** 2 + (wy[iy, ix] - qy) ** 2, kind="stable")
            keep = order[: target - count]
            missing[y0 + iy[keep], x0 + ix[keep]] = True
            return ~missing
        missing[y0:y1, x0:x1] |= new
        count += k
        qx, qy = px, py
        angle += rng.normal(0, 0.9)
        radius = float(np.clip(radius + rng.normal(0, 0.4), 1.5, 5.0))
        step = rng.uniform(0.8, 2.0) * scale
        px, py = px + step * math.cos(angle), py + step * math.sin(angle)
        # Bounce off the borders so the walk stays in the image.
        if not 0 <= px < size:
            angle = math.pi - angle
            px = float(np.clip(px, 0, size - 1e-3))
        if not 0 <= py < size:
            angle = -angle
            py = float(np.clip(py, 0, size - 1e-3))


def _face_seed(split: str, index: int, seed: int) -> int:
    """Seed of face `index` of `split`: 3*hash(seed, index) + split id, so splits never share a face seed."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {sorted(SPLITS)}")
    h = int(np.random.SeedSequence([seed, index]).generate_state(2, np.uint32).view(np.uint64)[0])
    return 3 * h + SPLITS[split]


def faces_split(split: str, num: int, seed: int = 0) -> np.ndarray:
    """`num` faces of `split` ('train', 'val' or 'test'): uint8 (num, 64, 64, 3).

    Face i depends only on (split, seed, i), so a longer request extends a shorter one.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {sorted(SPLITS)}")
    out = np.empty((num, 64, 64, 3), np.uint8)
    for i in range(num):
        out[i] = render_face(_face_seed(split, i, seed))
    return out


def faces_test_set(num: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Held-out faces with brush masks: (images uint8 (num, 64, 64, 3), known bool (num, 64, 64), True = known)."""
    return faces_split("test", num, seed), brush_masks(num, seed)


def brush_masks(num: int, seed: int = 0, size: int = 64) -> np.ndarray:
    """``num`` random brush masks, bool (num, size, size), True = known; mask i depends only on
    (seed, i), the extra word keeps mask streams apart from face seeds."""
    return np.array([random_brush_mask(np.random.default_rng([seed, i, 0x6D61736B]), size)
                     for i in range(num)]).reshape(num, size, size)
