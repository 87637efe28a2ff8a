"""The synthetic world: categories, attributes, rendering and factor annotations.

Conventions (pinned):

- An image is ``size x size`` RGB uint8 (default 32), rendered with numpy, vectorised over the
  batch. Pixel coordinates are the centres of a ``[-1, 1]^2`` grid, ``y`` pointing down.
- A sample is fully described by one row of its *attribute table* (:func:`sample_attributes`);
  :func:`render` is a pure function of that table (per-pixel noise comes from a fixed bank
  indexed by the ``noise_id`` attribute), so sample ``i`` renders identically whatever batch
  it is rendered in, and the same ``(config, n, seed)`` gives bit-identical images.
- Factor annotations (:func:`factor_flags`) use ImageNet-X's 16 factor names and are computed
  from the attributes with the thresholds in :data:`THRESHOLDS` (documented there), never
  sampled separately, so they cannot disagree with the picture.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GENERATOR_VERSION = "1.0"

#: the 10 object categories (the label space ``"synth"``), defined by silhouette
CATEGORIES: list[str] = [
    "circle", "square", "triangle", "star", "cross",
    "hexagon", "ring", "moon", "heart", "arrow",
]
#: three sub-types per category (index 0 is the prototype); ``SUBTYPES[c][k]``
SUBTYPES: dict[str, list[str]] = {
    "circle": ["round", "oval", "bumpy"],
    "square": ["sharp", "rounded", "oblong"],
    "triangle": ["even", "tall", "wide"],
    "star": ["plain", "fat", "spiky"],
    "cross": ["thin", "thick", "latin"],
    "hexagon": ["even", "flat", "soft"],
    "ring": ["thin", "thick", "oval"],
    "moon": ["slim", "fat", "half"],
    "heart": ["plain", "wide", "slim"],
    "arrow": ["plain", "thick", "bighead"],
}
#: novel categories for near-OOD (never in any training source)
NOVEL_CATEGORIES: list[str] = ["pentagon", "lshape", "bowtie", "trapezoid", "drop"]
#: novel fine-grained domain (iNaturalist-like): leaf shapes
LEAF_CATEGORIES: list[str] = ["leaf-oval", "leaf-lobed", "leaf-needle", "leaf-heart"]

#: fill patterns; the first 10 are the categories' characteristic patterns (same order)
PATTERNS: list[str] = [
    "stripes", "checker", "dots", "waves", "rings", "zigzag", "grid", "diagonal", "spots",
    "plain", "hatch", "scales", "weave", "noise",
]
#: colour words for hue bins (10 bins of 0.1); category c's characteristic hue is c / 10
HUE_WORDS: list[str] = [
    "red", "orange", "yellow", "lime", "green", "teal", "cyan", "blue", "purple", "pink",
]
BACKGROUNDS: list[str] = ["plain", "clutter", "scene"]
STYLES: list[str] = ["photo", "sketch", "silhouette", "painting"]

#: ImageNet-X's 16 factor names, in its order (imagenet_x.utils.FACTORS)
FACTORS: list[str] = [
    "pose", "background", "pattern", "color", "smaller", "shape", "partial_view",
    "subcategory", "texture", "larger", "darker", "object_blocking", "person_blocking",
    "style", "brighter", "multiple_objects",
]

#: how each factor flag is derived from the attributes (all thresholds inclusive of the
#: unusual side). ``size`` is the object's radius as a fraction of the half-width.
THRESHOLDS: dict[str, str] = {
    "pose": "|rotation| > 45 degrees (canonical poses are within +-25)",
    "background": "background is not 'plain'",
    "pattern": "fill pattern is not the category's characteristic pattern",
    "color": "hue differs from the category's characteristic hue by > 0.08 (circular)",
    "smaller": "size < 0.38",
    "larger": "size > 0.85",
    "shape": "deformation amplitude > 0.12",
    "partial_view": "max(|x|, |y|) of the centre + 0.7 * size > 1 (object cut by the border)",
    "subcategory": "sub-type is not the prototype (index > 0)",
    "texture": "surface grain amplitude > 0.12",
    "darker": "light gain < 0.65",
    "brighter": "light gain > 1.4",
    "object_blocking": "an occluding bar crosses the object",
    "person_blocking": "a person figure stands in front of the object",
    "style": "style is not 'photo' (sketch, silhouette or painting)",
    "multiple_objects": "at least one extra object is drawn",
}

_NOISE_BANK_SIZE = 256


def _noise_bank(size: int) -> np.ndarray:
    rng = np.random.default_rng(20231201 + size)
    return rng.standard_normal((_NOISE_BANK_SIZE, size, size)).astype(np.float32)


_BANKS: dict[int, np.ndarray] = {}


def noise_bank(size: int) -> np.ndarray:
    """Fixed per-pixel standard-normal noise ``[256, size, size]`` (seeded; cached)."""
    if size not in _BANKS:
        _BANKS[size] = _noise_bank(size)
    return _BANKS[size]


# ----------------------------------------------------------------------------- shapes
def _polygon_radius(theta, n, offset=0.0):
    """Radius of a regular n-gon with circumradius 1 in direction theta."""
    seg = 2 * np.pi / n
    t = np.mod(theta - offset, seg) - seg / 2
    return np.cos(np.pi / n) / np.cos(t)


def _shape_distance(kind: str, sub: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Approximate signed distance (positive inside, object units, radius ~1) of a shape.

    ``sub`` is ``[B]`` (sub-type index), ``x``/``y`` are ``[B, H, W]`` object coordinates.
    """
    s = sub[:, None, None]
    if kind == "circle":
        ax = np.where(s == 1, 0.62, 1.0)
        yy = y / ax
        r = np.sqrt(x * x + yy * yy)
        th = np.arctan2(yy, x)
        rad = np.where(s == 2, 0.92 + 0.1 * np.cos(7 * th), 0.95)
        return (rad - r) * np.where(s == 1, ax, 1.0)
    if kind == "square":
        p = np.where(s == 1, 3.0, 10.0)
        ax = np.where(s == 2, 0.55, 1.0)
        ex = np.abs(x) / 0.82
        ey = np.abs(y) / (0.82 * ax)
        v = (ex ** p + ey ** p) ** (1.0 / p)
        return (1.0 - v) * 0.82 * ax
    if kind == "triangle":
        ax = np.where(s == 1, 1.35, np.where(s == 2, 0.6, 1.0))
        yy = (y - 0.15) / ax
        r = np.sqrt(x * x + yy * yy)
        th = np.arctan2(yy, x)
        return (_polygon_radius(th, 3, -np.pi / 2) - r) * np.minimum(ax, 1.0)
    if kind == "star":
        r0 = np.where(s == 1, 0.62, np.where(s == 2, 0.3, 0.45))
        r = np.sqrt(x * x + y * y)
        th = np.arctan2(y, x) + np.pi / 2
        c = np.abs(np.cos(2.5 * th))
        rad = r0 + (1.0 - r0) * c ** 3
        return (rad - r) * 0.6
    if kind == "cross":
        w = np.where(s == 1, 0.42, 0.26)
        yo = np.where(s == 2, -0.35, 0.0)
        b1 = np.minimum(w - np.abs(y - yo), 0.95 - np.abs(x))
        b2 = np.minimum(w - np.abs(x), 0.95 - np.abs(y))
        return np.maximum(b1, b2)
    if kind == "hexagon":
        ax = np.where(s == 1, 0.68, 1.0)
        yy = y / ax
        r = np.sqrt(x * x + yy * yy)
        th = np.arctan2(yy, x)
        rad = _polygon_radius(th, 6)
        rad = np.where(s == 2, 0.5 * rad + 0.5 * 0.93, rad * 0.97)
        return (rad - r) * np.where(s == 1, ax, 1.0)
    if kind == "ring":
        ax = np.where(s == 2, 0.65, 1.0)
        yy = y / ax
        r = np.sqrt(x * x + yy * yy)
        rin = np.where(s == 1, 0.42, np.where(s == 2, 0.58, 0.68))
        return np.minimum(r - rin, 0.95 - r) * np.where(s == 2, ax, 1.0)
    if kind == "moon":
        off = np.where(s == 1, 0.62, np.where(s == 2, 0.0, 0.38))
        rc = np.where(s == 2, 10.0, 0.85)
        cx = np.where(s == 2, 10.0, off)
        r = np.sqrt(x * x + y * y)
        d_in = 0.95 - r
        d_out = np.sqrt((x - cx) ** 2 + y * y) - rc
        d_half = -x  # half moon: keep the left half
        return np.where(s == 2, np.minimum(d_in, d_half), np.minimum(d_in, d_out))
    if kind == "heart":
        ax = np.where(s == 1, 0.8, np.where(s == 2, 1.3, 1.0))
        xx = x / 1.0 * ax
        yy = -(y + 0.05) * 1.1
        xx = xx * 1.05
        f = (xx * xx + yy * yy - 1.0) ** 3 - xx * xx * yy ** 3
        return np.clip(-f, -1.0, 1.0) * 0.35
    if kind == "arrow":
        w = np.where(s == 1, 0.24, 0.14)
        hx = np.where(s == 2, -0.1, 0.15)
        hw = np.where(s == 2, 0.8, 0.55)
        shaft = np.minimum(w - np.abs(y), np.minimum(x + 0.95, hx + 0.05 - x))
        head = np.minimum(x - hx, np.minimum(0.95 - x, (0.95 - x) / (0.95 - hx) * hw - np.abs(y)))
        return np.maximum(shaft, head * 0.8)
    if kind == "patch":  # texture patch filling the frame (Textures-like OOD)
        return np.full_like(x, 5.0)
    # novel categories (near-OOD)
    if kind == "pentagon":
        r = np.sqrt(x * x + y * y)
        return (_polygon_radius(np.arctan2(y, x), 5, -np.pi / 2) * 0.95 - r)
    if kind == "lshape":
        a = np.minimum(0.25 - np.abs(x + 0.55), 0.9 - np.abs(y))
        b = np.minimum(0.25 - np.abs(y - 0.65), 0.85 - np.abs(x))
        return np.maximum(a, b)
    if kind == "bowtie":
        return np.minimum(np.abs(x) * 0.9 + 0.05 - np.abs(y), 0.9 - np.abs(x))
    if kind == "trapezoid":
        half = 0.45 + 0.45 * (y + 0.6) / 1.2
        return np.minimum(0.6 - np.abs(y), half - np.abs(x))
    if kind == "drop":
        r = np.sqrt(x * x + (y - 0.25) ** 2)
        half = 0.62 * (y + 0.95) / 1.2
        return np.maximum(0.62 - r, np.minimum(half - np.abs(x), np.minimum(y + 0.95, 0.3 - y)))
    if kind.startswith("leaf"):
        ax = {"leaf-oval": 0.5, "leaf-lobed": 0.7, "leaf-needle": 0.16, "leaf-heart": 0.75}[kind]
        yy = y / ax
        r = np.sqrt(x * x + yy * yy)
        th = np.arctan2(yy, x)
        rad = np.full_like(r, 0.95)
        if kind == "leaf-lobed":
            rad = 0.8 + 0.18 * np.cos(5 * th)
        if kind == "leaf-heart":
            rad = 0.95 - 0.35 * np.exp(-((th + np.pi / 2) ** 2) / 0.15)
        vein = 0.06 - np.abs(yy) * ax  # midrib as a thin notch
        d = (rad - r) * ax
        return np.where((vein > 0) & (d > 0.08), np.minimum(d, 0.02 - vein), d)
    raise KeyError(f"unknown shape kind {kind!r}")


# --------------------------------------------------------------------------- patterns
def _pattern(pid: np.ndarray, x: np.ndarray, y: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Pattern value in [0, 1] of pattern ids ``pid`` ``[B]`` at object coords ``[B, H, W]``."""
    out = np.ones_like(x)
    for k in np.unique(pid):
        m = pid == k
        X, Y = x[m], y[m]
        name = PATTERNS[int(k)]
        if name == "stripes":
            v = 0.5 + 0.5 * np.sign(np.sin(7.0 * X))
        elif name == "checker":
            v = 0.5 + 0.5 * np.sign(np.sin(5.5 * X) * np.sin(5.5 * Y))
        elif name == "dots":
            v = 1.0 - ((np.cos(8.0 * X) * np.cos(8.0 * Y)) > 0.45)
        elif name == "waves":
            v = 0.5 + 0.5 * np.sin(8.0 * Y + 2.5 * np.sin(6.0 * X))
        elif name == "rings":
            v = 0.5 + 0.5 * np.sign(np.sin(10.0 * np.sqrt(X * X + Y * Y)))
        elif name == "zigzag":
            v = 0.5 + 0.5 * np.sign(np.sin(8.0 * Y + 6.0 * np.abs(np.mod(3.0 * X, 2.0) - 1.0)))
        elif name == "grid":
            v = 1.0 - ((np.abs(np.sin(6.0 * X)) < 0.3) | (np.abs(np.sin(6.0 * Y)) < 0.3))
        elif name == "diagonal":
            v = 0.5 + 0.5 * np.sign(np.sin(6.0 * (X + Y)))
        elif name == "spots":
            v = 1.0 - (np.sin(4.1 * X + 1.3) * np.sin(3.7 * Y + 0.4) + 0.5 * np.sin(9.0 * X * Y) > 0.55)
        elif name == "plain":
            v = np.ones_like(X)
        elif name == "hatch":
            v = 1.0 - ((np.abs(np.sin(7.0 * (X + Y))) < 0.25) | (np.abs(np.sin(7.0 * (X - Y))) < 0.25))
        elif name == "scales":
            v = 0.5 + 0.5 * np.sign(np.sin(9.0 * np.sqrt(np.mod(X * 3, 1.0) ** 2 + np.mod(Y * 3, 1.0) ** 2)))
        elif name == "weave":
            v = 0.5 + 0.5 * np.sin(9.0 * X) * np.sign(np.sin(4.5 * Y))
        else:  # noise
            v = np.clip(0.5 + 0.4 * noise[m], 0.0, 1.0)
        out[m] = v
    return out.astype(np.float32)


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB in [0, 1]; inputs broadcast, output has a trailing axis of 3."""
    h = np.mod(h, 1.0)
    k = np.stack([(5 + h * 6) % 6, (3 + h * 6) % 6, (1 + h * 6) % 6], axis=-1)
    s = np.asarray(s)[..., None]
    v = np.asarray(v)[..., None]
    return (v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)).astype(np.float32)


# ------------------------------------------------------------------------- attributes
#: attribute columns of the table that :func:`render` reads
ATTRIBUTE_COLUMNS = [
    "kind", "category", "subtype", "rotation", "size", "cx", "cy", "deform", "deform_phase",
    "hue", "sat", "val", "pattern", "pattern_contrast", "pattern_scale", "grain", "background",
    "bg_hue", "bg_hue2", "bg_param", "style", "light", "occluder", "occ_angle", "occ_offset",
    "occ_hue", "person", "person_dx", "n_extra", "extra_kind", "extra_x", "extra_y",
    "extra_rotation", "extra_hue", "noise_id", "has_object",
]


def _circ_dist(a, b):
    d = np.abs(np.mod(a, 1.0) - np.mod(b, 1.0))
    return np.minimum(d, 1.0 - d)


def factor_flags(attrs: pd.DataFrame) -> pd.DataFrame:
    """ImageNet-X's 16 factor flags (0/1 int columns, ImageNet-X order) from an attribute table.

    The rules are in :data:`THRESHOLDS`; samples without an object (``has_object == 0``) get 0
    for object factors except background and style.
    """
    a = attrs
    obj = a["has_object"].to_numpy() == 1
    cat = a["category"].to_numpy()
    known = cat >= 0
    char_hue = np.where(known, cat, 0) / 10.0
    out = pd.DataFrame(index=a.index)
    out["pose"] = np.abs(a["rotation"].to_numpy()) > 45.0
    out["background"] = a["background"].to_numpy() != "plain"
    out["pattern"] = (a["pattern"].to_numpy() != np.where(known, cat, -99)) & obj
    out["color"] = (_circ_dist(a["hue"].to_numpy(), char_hue) > 0.08) | ~known
    out["smaller"] = a["size"].to_numpy() < 0.38
    out["shape"] = a["deform"].to_numpy() > 0.12
    ext = np.maximum(np.abs(a["cx"].to_numpy()), np.abs(a["cy"].to_numpy())) + 0.7 * a["size"].to_numpy()
    out["partial_view"] = ext > 1.0
    out["subcategory"] = a["subtype"].to_numpy() > 0
    out["texture"] = a["grain"].to_numpy() > 0.12
    out["larger"] = a["size"].to_numpy() > 0.85
    out["darker"] = a["light"].to_numpy() < 0.65
    out["object_blocking"] = a["occluder"].to_numpy() == 1
    out["person_blocking"] = a["person"].to_numpy() == 1
    out["style"] = a["style"].to_numpy() != "photo"
    out["brighter"] = a["light"].to_numpy() > 1.4
    out["multiple_objects"] = a["n_extra"].to_numpy() > 0
    for f in FACTORS:
        if f not in ("background", "style", "darker", "brighter"):
            out[f] = out[f] & obj
    out = out[FACTORS].astype(np.int8)
    return out


# ---------------------------------------------------------------------------- render
def _object_coords(gx, gy, cx, cy, rot_deg, size, deform, phase):
    """Map the pixel grid into each object's frame (radius ~1)."""
    t = np.deg2rad(rot_deg)[:, None, None]
    dx = (gx[None] - cx[:, None, None]) / size[:, None, None]
    dy = (gy[None] - cy[:, None, None]) / size[:, None, None]
    c, s = np.cos(t), np.sin(t)
    x = c * dx + s * dy
    y = -s * dx + c * dy
    d = deform[:, None, None]
    ph = phase[:, None, None]
    x = x + d * np.sin(3.0 * y + ph)
    y = y + 0.6 * d * np.sin(2.5 * x + ph * 1.7)
    return x.astype(np.float32), y.astype(np.float32)


def _shape_alpha(kinds, subs, x, y, px_per_unit):
    """Soft coverage in [0, 1] and the signed distance in pixels for a batch of shapes."""
    d = np.zeros_like(x)
    for k in np.unique(kinds):
        m = kinds == k
        d[m] = _shape_distance(str(k), subs[m], x[m], y[m])
    dpx = d * px_per_unit[:, None, None]
    return np.clip(0.5 + dpx, 0.0, 1.0), dpx


def _background(a: pd.DataFrame, gx, gy, noise) -> np.ndarray:
    n = len(a)
    H = gx.shape[0]
    kind = a["background"].to_numpy()
    h1 = a["bg_hue"].to_numpy().astype(np.float32)
    h2 = a["bg_hue2"].to_numpy().astype(np.float32)
    p = a["bg_param"].to_numpy().astype(np.float32)
    img = np.empty((n, H, H, 3), np.float32)
    plain = kind == "plain"
    if plain.any():
        col = hsv_to_rgb(h1[plain], 0.12 + 0.1 * p[plain], 0.55 + 0.35 * p[plain])
        img[plain] = col[:, None, None, :]
    clut = kind == "clutter"
    if clut.any():
        P = p[clut][:, None, None]
        f1 = np.sin(4.0 * gx[None] * (1 + 2 * P) + 7.0 * P) * np.cos(3.0 * gy[None] * (2 - P) + 3 * P)
        f2 = np.sin(5.0 * (gx[None] + gy[None]) * (1 + P) + 11.0 * P)
        w = (0.5 + 0.5 * f1)[..., None]
        c1 = hsv_to_rgb(h1[clut], 0.6, 0.85)[:, None, None, :]
        c2 = hsv_to_rgb(h2[clut], 0.6, 0.45)[:, None, None, :]
        img[clut] = w * c1 + (1 - w) * c2 + 0.12 * f2[..., None]
    scene = kind == "scene"
    if scene.any():
        P = p[scene][:, None, None]
        horizon = (P - 0.5) * 0.8 + 0.1 * np.sin(3.0 * gx[None] + 9 * P)
        sky = hsv_to_rgb(0.55 + 0.08 * h1[scene], 0.45, 0.9)[:, None, None, :]
        ground = hsv_to_rgb(0.08 + 0.25 * h2[scene], 0.55, 0.5)[:, None, None, :]
        below = (gy[None] > horizon)[..., None]
        grad = (0.75 + 0.25 * (gy[None] + 1) / 2)[..., None]
        tex = 1.0 + 0.15 * np.sin(12.0 * gy[None] + 4 * np.sin(5 * gx[None]))[..., None]
        img[scene] = np.where(below, ground * tex, sky * grad)
    img += 0.02 * noise[..., None]
    return img


#: numpy's CPU features whose kernels of the transcendental functions round differently from
#: the AVX2 ones (pictures rendered with them differ in a few pixels from the world's bytes)
AVX512_FEATURES = ("X86_V4", "AVX512_SKX", "AVX512_ICL", "AVX512_SPR")
NPY_DISABLE = "X86_V4 AVX512_ICL AVX512_SPR"
_warned_dispatch = False


def dispatch_warning() -> str | None:
    """A message when numpy dispatches to AVX-512 kernels (so rendered pictures will not be
    byte-identical to the world's published ones), else None."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as feats
    on = [f for f in AVX512_FEATURES if feats.get(f)]
    if not on:
        return None
    return (f"numpy dispatches to AVX-512 kernels here ({', '.join(on)}): synthetic pictures "
            "will differ in a few pixels from the world's published bytes (dataset fingerprints, "
            "the zoo's training data, the A-like set's kept ids). Start Python with "
            f"NPY_DISABLE_CPU_FEATURES='{NPY_DISABLE}' (the Makefile sets it) for the same bytes.")


def render(attrs: pd.DataFrame, size: int = 32) -> np.ndarray:
    """Render an attribute table to ``uint8 [N, size, size, 3]`` (pure; see module notes).

    The bytes are those of numpy's AVX2 kernels; where numpy dispatches to AVX-512 ones, a
    few pixels differ and a warning (once per process) says how to get the same bytes."""
    global _warned_dispatch
    if not _warned_dispatch:
        _warned_dispatch = True
        msg = dispatch_warning()
        if msg:
            import warnings

            warnings.warn(msg, RuntimeWarning, stacklevel=2)
    a = attrs.reset_index(drop=True)
    n = len(a)
    if n == 0:
        return np.zeros((0, size, size, 3), np.uint8)
    lin = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
    gx, gy = np.meshgrid(lin, lin)
    bank = noise_bank(size)
    nid = a["noise_id"].to_numpy() % _NOISE_BANK_SIZE
    noise = bank[nid]
    noise2 = bank[(nid + 97) % _NOISE_BANK_SIZE]
    style = a["style"].to_numpy()
    img = _background(a, gx, gy, noise2)
    sketch = style == "sketch"
    img[sketch] = 0.94 + 0.02 * noise2[sketch][..., None]
    painting = style == "painting"
    if painting.any():
        img[painting] = np.round(img[painting] * 3) / 3

    # extra objects (behind the main object)
    ne = a["n_extra"].to_numpy()
    ex = ne > 0
    if ex.any():
        e = a[ex]
        esize = a["size"].to_numpy()[ex] * 0.55
        xx, yy = _object_coords(gx, gy, e["extra_x"].to_numpy(), e["extra_y"].to_numpy(),
                                e["extra_rotation"].to_numpy(), esize, np.zeros(len(e)), np.zeros(len(e)))
        al, dpx = _shape_alpha(e["extra_kind"].to_numpy(), np.zeros(len(e), int), xx, yy,
                               esize * size / 2)
        col = hsv_to_rgb(e["extra_hue"].to_numpy(), 0.55, 0.75)[:, None, None, :]
        st = style[ex]
        col = np.where((st == "sketch")[:, None, None, None], 0.94, col)
        line = (np.abs(dpx) < 0.8)[..., None] & (st == "sketch")[:, None, None, None]
        img[ex] = img[ex] * (1 - al[..., None]) + col * al[..., None]
        img[ex] = np.where(line, 0.1, img[ex])

    has = a["has_object"].to_numpy() == 1
    if has.any():
        o = a[has]
        sz = o["size"].to_numpy().astype(np.float32)
        x, y = _object_coords(gx, gy, o["cx"].to_numpy(), o["cy"].to_numpy(),
                              o["rotation"].to_numpy(), sz, o["deform"].to_numpy(),
                              o["deform_phase"].to_numpy())
        al, dpx = _shape_alpha(o["kind"].to_numpy(), o["subtype"].to_numpy(), x, y, sz * size / 2)
        ps = o["pattern_scale"].to_numpy()[:, None, None]
        pat = _pattern(o["pattern"].to_numpy(), x * ps, y * ps, noise[has])
        base = hsv_to_rgb(o["hue"].to_numpy(), o["sat"].to_numpy(), o["val"].to_numpy())
        dark = hsv_to_rgb(o["hue"].to_numpy() + 0.5, o["sat"].to_numpy() * 0.8, o["val"].to_numpy() * 0.35)
        pc = o["pattern_contrast"].to_numpy()[:, None, None, None]
        w = pat[..., None] * pc + (1 - pc)
        fill = w * base[:, None, None, :] + (1 - w) * dark[:, None, None, :]
        fill = fill + (o["grain"].to_numpy()[:, None, None] * noise[has])[..., None]
        st = style[has]
        sil = st == "silhouette"
        fill[sil] = 0.08 + 0.05 * base[sil][:, None, None, :]
        pnt = st == "painting"
        if pnt.any():
            fill[pnt] = (np.round(base[pnt] * 4) / 4)[:, None, None, :]
        sk = st == "sketch"
        A = al[..., None]
        sub = img[has]
        sub = sub * (1 - A) + fill * A
        outline = (np.abs(dpx) < 0.75)[..., None]
        sub = np.where(outline & (sk | pnt)[:, None, None, None], 0.08, sub)
        paper = 0.94 + 0.02 * noise2[has][..., None]
        sub = np.where((sk[:, None, None, None]) & ~outline, paper, sub)
        img[has] = sub

    # occluding bar
    occ = a["occluder"].to_numpy() == 1
    if occ.any():
        o = a[occ]
        t = np.deg2rad(o["occ_angle"].to_numpy())[:, None, None]
        dist = (np.cos(t) * (gx[None] - o["cx"].to_numpy()[:, None, None])
                + np.sin(t) * (gy[None] - o["cy"].to_numpy()[:, None, None])
                - o["occ_offset"].to_numpy()[:, None, None] * o["size"].to_numpy()[:, None, None])
        bw = (0.28 * o["size"].to_numpy() + 0.06)[:, None, None]
        m = np.clip(0.5 + (bw - np.abs(dist)) * size / 2, 0, 1)[..., None]
        col = hsv_to_rgb(o["occ_hue"].to_numpy(), 0.15, 0.45)[:, None, None, :]
        img[occ] = img[occ] * (1 - m) + col * m
    # person: head + body in front of the object
    per = a["person"].to_numpy() == 1
    if per.any():
        o = a[per]
        px = (o["cx"].to_numpy() + o["person_dx"].to_numpy() * o["size"].to_numpy())[:, None, None]
        s = (0.35 + 0.3 * o["size"].to_numpy())[:, None, None]
        hy = o["cy"].to_numpy()[:, None, None] - 0.55 * s
        head = np.clip(0.5 + (0.22 * s - np.sqrt((gx[None] - px) ** 2 + (gy[None] - hy) ** 2)) * size / 2, 0, 1)
        body = np.clip(0.5 + np.minimum(0.28 * s - np.abs(gx[None] - px),
                                        np.minimum(gy[None] - (hy + 0.25 * s), 1.5 - gy[None])) * size / 2, 0, 1)
        skin = np.array([0.86, 0.67, 0.52], np.float32)
        cloth = hsv_to_rgb(o["occ_hue"].to_numpy(), 0.7, 0.55)[:, None, None, :]
        sub = img[per]
        sub = sub * (1 - body[..., None]) + cloth * body[..., None]
        sub = sub * (1 - head[..., None]) + skin * head[..., None]
        img[per] = sub

    light = a["light"].to_numpy().astype(np.float32)[:, None, None, None]
    img = np.where(light > 1, img * light + (light - 1) * 0.25, img * light)
    img += 0.015 * noise[..., None]
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
