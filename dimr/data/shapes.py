"""Procedural shapes: the offline default dataset, with exact geometry.

Eight classes of filled shapes with sharp edges (:data:`CLASS_NAMES`), drawn from a seed.  Unlike a
photograph, every item has a known geometry, a :class:`ShapeParams` (class, centre, radius,
rotation), so a generated sample can be compared with the exact template of its class: fit the
template (:func:`fit_template`) and report ``1 − IoU`` as its distortion.

Coordinates are *normalised*: ``(x, y) ∈ [0, 1]²`` covers the image, ``x`` to the right, ``y`` down,
pixel ``(row i, col j)`` of a ``size × size`` image has its centre at ``((j + ½)/size, (i + ½)/size)``.
Geometry is therefore independent of resolution: the same parameters render at 32² or 256².

A template has *radius* 1 in its own frame: its circumradius (every class fits exactly in the unit
disk, touching it), so ``radius + max(|cx − ½|, |cy − ½|) ≤ ½`` keeps a shape inside the image.  The
polygons and the star point a vertex up (towards −y) at rotation 0; ``rotation`` (radians) turns the
template by ``+θ`` in the ``(x, y)`` frame, which is clockwise on screen because ``y`` points down.
By default every shape is upright (rotation 0); with ``rotation="random"`` rotations are drawn within
one period of the class's rotational symmetry (:data:`SYMMETRY_ORDER`), so parameters stay identifiable.

Determinism: item ``i`` of ``ShapesDataset(seed=s)`` is a pure function of ``(s, i)`` (its own
``numpy`` generator seeded by ``[s, i]``), so DataLoader workers and DDP ranks agree whatever order
they read in.  Labels cycle (``i mod 8``), so every class has the same number of items (±1).

Rendering is vectorised numpy: every shape is a union of convex polygons (half-plane tests) or a
disk / annulus, anti-aliased by supersampling (``supersample²`` points per pixel, averaged: the pixel
value is the fraction of the pixel the shape covers), done only where a pixel can straddle an edge.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "CLASS_NAMES", "NUM_CLASSES", "SYMMETRY_ORDER", "PALETTES", "ROTATIONS", "FIXED_COLOURS",
    "ShapeParams", "ShapeItem", "ShapesDataset",
    "sample_item", "render_mask", "render_image", "template_area", "foreground_mask", "mask_iou",
    "fit_template",
]

CLASS_NAMES = ("circle", "square", "triangle", "pentagon", "hexagon", "star", "cross", "ring")
NUM_CLASSES = len(CLASS_NAMES)
#: Rotational symmetry order per class; 0 means continuous (rotation is meaningless, always 0).
SYMMETRY_ORDER = (0, 4, 3, 5, 6, 5, 4, 0)
PALETTES = ("white", "fixed", "random")
#: ``rotation="upright"`` (default) draws every shape at rotation 0, so each class is one template up to
#: size and position, and even an under-trained model's class-conditional average looks like the shape.
#: ``"random"`` turns each shape uniformly within one symmetry period: harder, because at high noise the
#: denoiser's average over rotations is a round blob.
ROTATIONS = ("upright", "random")
#: ``palette="fixed"``: one saturated colour per class (RGB in [0, 1]) on black.
FIXED_COLOURS = (
    (1.00, 0.25, 0.20),  # circle: red
    (0.20, 0.85, 0.25),  # square: green
    (0.25, 0.45, 1.00),  # triangle: blue
    (1.00, 0.90, 0.15),  # pentagon: yellow
    (0.95, 0.25, 0.95),  # hexagon: magenta
    (0.15, 0.90, 0.95),  # star: cyan
    (1.00, 0.55, 0.10),  # cross: orange
    (0.95, 0.95, 0.95),  # ring: white
)

STAR_INNER_RATIO = 0.45   # inner / outer radius of the 5-pointed star (a regular pentagram is 0.382)
CROSS_HALF_WIDTH = 0.34   # half-width of a cross arm; the arms' corners lie on the unit circle
RING_INNER_RATIO = 0.55   # inner / outer radius of the ring
_MIN_CONTRAST = 0.6       # palette="random": least RGB distance (in [0, 1] units) between fg and bg


@dataclass(frozen=True)
class ShapeParams:
    """The exact geometry of one shape, in normalised image coordinates (see the module docstring).

    ``class_id`` indexes :data:`CLASS_NAMES`; ``(cx, cy)`` is the centre; ``radius`` the circumradius
    as a fraction of the image side; ``rotation`` in radians (see the module docstring).
    """

    class_id: int
    cx: float
    cy: float
    radius: float
    rotation: float


@dataclass(frozen=True)
class ShapeItem:
    """One dataset item before rendering: geometry plus colours (RGB in [0, 1])."""

    params: ShapeParams
    foreground: tuple[float, float, float]
    background: tuple[float, float, float]


# ---------------------------------------------------------------------------------------------
# Templates: each class in its unit frame, as a disk/annulus or a union of convex polygons.
# ---------------------------------------------------------------------------------------------
def _regular_vertices(n: int, radius: float = 1.0, phase: float = 0.0) -> np.ndarray:
    """[n, 2] vertices of a regular n-gon, first vertex up (−y) when ``phase`` is 0."""
    a = -math.pi / 2 + phase + 2 * math.pi * np.arange(n) / n
    return radius * np.stack([np.cos(a), np.sin(a)], axis=1)


def _half_planes(vertices: np.ndarray) -> np.ndarray:
    """A convex polygon ([K, 2] vertices, either orientation) as K half-planes ``a·x + b·y ≤ c``.

    Returns [K, 3] rows ``(a, b, c)`` with ``(a, b)`` the unit outward edge normal.
    """
    centre = vertices.mean(axis=0)
    rows = []
    for p, q in zip(vertices, np.roll(vertices, -1, axis=0)):
        n = np.array([q[1] - p[1], p[0] - q[0]])
        n /= np.linalg.norm(n)
        if n @ (centre - p) > 0:  # make the normal point away from the interior
            n = -n
        rows.append((n[0], n[1], n @ p))
    return np.array(rows)


def _polygon_parts(class_id: int) -> list[np.ndarray]:
    """The convex parts (each [K, 3] half-planes) whose union is the template of ``class_id``."""
    name = CLASS_NAMES[class_id]
    if name in ("square", "triangle", "pentagon", "hexagon"):
        return [_half_planes(_regular_vertices(SYMMETRY_ORDER[class_id]))]
    if name == "star":
        # Five convex kites (centre, inner vertex, tip, next inner vertex): a kite's angle at an
        # inner vertex is half the star's reflex angle there, < 180°, so each kite is convex.
        outer = _regular_vertices(5)
        inner = _regular_vertices(5, STAR_INNER_RATIO, phase=math.pi / 5)
        return [_half_planes(np.stack([np.zeros(2), inner[k - 1], outer[k], inner[k]])) for k in range(5)]
    if name == "cross":  # two bars 2w × 2L, L = √(1 − w²) so the outer corners lie on the unit circle
        w = CROSS_HALF_WIDTH
        L = math.sqrt(1 - w * w)
        return [_half_planes(np.array([[-w, -L], [w, -L], [w, L], [-w, L]])),
                _half_planes(np.array([[-L, -w], [L, -w], [L, w], [-L, w]]))]
    raise ValueError(f"{name} is not a polygon class")


@functools.lru_cache(maxsize=None)
def _template(class_id: int) -> tuple[str, object]:
    """``("disk", inner_ratio)`` or ``("polygons", planes [parts, K, 3])`` for a class (cached)."""
    if not 0 <= class_id < NUM_CLASSES:
        raise ValueError(f"class_id must be in [0, {NUM_CLASSES}), got {class_id}")
    name = CLASS_NAMES[class_id]
    if name == "circle":
        return "disk", 0.0
    if name == "ring":
        return "disk", RING_INNER_RATIO
    parts = _polygon_parts(class_id)
    k = max(len(p) for p in parts)
    # Pad every part to K planes by repeating its first plane (a no-op in the max over planes).
    planes = np.stack([np.concatenate([p, np.repeat(p[:1], k - len(p), axis=0)]) for p in parts])
    return "polygons", planes


def template_area(class_id: int) -> float:
    """Area of the unit template (radius 1), exact; multiply by ``radius²`` for a shape's area."""
    name = CLASS_NAMES[class_id]
    if name == "circle":
        return math.pi
    if name == "ring":
        return math.pi * (1 - RING_INNER_RATIO ** 2)
    if name == "star":  # ten triangles (centre, tip, inner vertex), each ½·1·ρ·sin(π/5)
        return 5 * STAR_INNER_RATIO * math.sin(math.pi / 5)
    if name == "cross":  # two 2w × 2L bars overlapping in a 2w × 2w square
        w = CROSS_HALF_WIDTH
        return 8 * w * math.sqrt(1 - w * w) - 4 * w * w
    n = SYMMETRY_ORDER[class_id]
    return n / 2 * math.sin(2 * math.pi / n)


# ---------------------------------------------------------------------------------------------
# Rasterisation
# ---------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``, each [size²] float64: the pixel centres of a ``size × size`` image, row-major."""
    c = (np.arange(size) + 0.5) / size
    y, x = np.meshgrid(c, c, indexing="ij")
    x, y = x.ravel(), y.ravel()
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _distance_bound(class_id: int, geometry: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A signed distance bound for B shapes of one class at P points: [B, P] float64.

    ``geometry``: [B, 4] rows ``(cx, cy, radius, rotation)``; ``x``, ``y``: [P].  The value is ``≤ 0``
    exactly inside the shape, and its magnitude never exceeds the true distance to the boundary:
    exact for the disks; for a convex polygon the largest signed distance to its edge lines; for a
    union of convex parts the minimum over parts (a point at depth d in one part is at least d inside
    the union, and a point outside all parts is at least as far as from the nearest part).
    """
    kind, data = _template(class_id)
    g = np.asarray(geometry, dtype=np.float64)
    cx, cy, r, th = g[:, 0:1], g[:, 1:2], g[:, 2:3], g[:, 3:4]
    if kind == "disk":
        d = np.hypot(x - cx, y - cy)
        return np.maximum(d - r, data * r - d) if data > 0 else d - r
    planes = data  # [parts, K, 3] float64, in the unit frame
    # A template half-plane n·q ≤ c, with q = R(−θ)(p − t)/r, is (R(θ)n)·p ≤ r·c + (R(θ)n)·t in the
    # image: transform the few planes, not the many points.  R(θ)n stays a unit vector, so
    # (R(θ)n)·p − (r·c + (R(θ)n)·t) is the signed distance to the edge line.
    cos, sin = np.cos(th)[:, :, None], np.sin(th)[:, :, None]
    a, b, c = planes[None, ..., 0], planes[None, ..., 1], planes[None, ..., 2]
    wa = cos * a - sin * b                                     # [B, parts, K]
    wb = sin * a + cos * b
    wc = r[:, :, None] * c + wa * cx[:, :, None] + wb * cy[:, :, None]
    # (Broadcasting rather than a matmul: BLAS threads spinning on tiny products starve DataLoader
    # worker processes on a 2-core machine.)
    lines = wa[..., None] * x + wb[..., None] * y - wc[..., None]  # [B, parts, K, P]
    return lines.max(axis=2).min(axis=1)                       # convex parts: max; union: min


def _geometry_row(params: ShapeParams) -> np.ndarray:
    return np.array([[params.cx, params.cy, params.radius, params.rotation]], dtype=np.float64)


def render_mask(params: ShapeParams, size: int, supersample: int = 4) -> np.ndarray:
    """The exact mask of a shape at any resolution: [size, size] float32 in [0, 1].

    Each pixel holds the fraction of its area inside the shape, estimated from ``supersample²``
    regularly placed samples — the points of the ``size·supersample`` pixel grid — and
    ``supersample=1`` gives the binary mask sampled at pixel centres.  Only pixels that the boundary
    can cross (distance bound at the centre within half a pixel diagonal) are supersampled; the others
    are wholly in or out, so the result equals brute-force supersampling.
    """
    if size < 1 or supersample < 1:
        raise ValueError("size and supersample must be >= 1")
    geometry = _geometry_row(params)
    x, y = _pixel_centres(size)
    bound = _distance_bound(params.class_id, geometry, x, y)[0]  # [size²]
    coverage = (bound <= 0).astype(np.float32)
    if supersample > 1:
        edge = np.flatnonzero(np.abs(bound) <= math.sqrt(0.5) / size + 1e-9)
        if edge.size:
            s, n = supersample, size * supersample
            i, j = np.divmod(edge, size)
            sub_i, sub_j = np.divmod(np.arange(s * s), s)
            xs = (j[:, None] * s + sub_j + 0.5) / n               # same points as the fine grid
            ys = (i[:, None] * s + sub_i + 0.5) / n
            inside = _distance_bound(params.class_id, geometry, xs.ravel(), ys.ravel())[0] <= 0
            coverage[edge] = inside.reshape(-1, s * s).mean(axis=1)
    return coverage.reshape(size, size)


def render_image(item: ShapeItem, size: int, supersample: int = 4) -> np.ndarray:
    """Render an item as [3, size, size] float32 in [−1, 1]: ``bg + coverage·(fg − bg)``."""
    cov = render_mask(item.params, size, supersample)
    fg = np.asarray(item.foreground, np.float32)[:, None, None]
    bg = np.asarray(item.background, np.float32)[:, None, None]
    return (bg + cov[None] * (fg - bg)) * 2 - 1


# ---------------------------------------------------------------------------------------------
# Sampling items from (seed, index)
# ---------------------------------------------------------------------------------------------
def sample_item(seed: int, index: int, palette: str = "white",
                radius_range: tuple[float, float] = (0.25, 0.42), max_shift: float = 0.06,
                rotation: str = "upright") -> ShapeItem:
    """Item ``index`` of the dataset with ``seed``: a pure function of its arguments.

    Class ``index mod 8``; radius ~ U(radius_range); centre = (½, ½) + U(−max_shift, max_shift)²;
    rotation 0 (``rotation="upright"``) or ~ U(0, 2π/order) (``"random"``; always 0 for the circle and
    ring). The random draws happen in the same order either way, so the two settings share every
    item's class, radius, centre and colours. Colours by ``palette``: ``"white"`` (white on
    black), ``"fixed"`` (:data:`FIXED_COLOURS` on black), ``"random"`` (random fg and bg at RGB distance
    ≥ 0.6).
    """
    if palette not in PALETTES:
        raise ValueError(f"palette must be one of {PALETTES}, got {palette!r}")
    if rotation not in ROTATIONS:
        raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation!r}")
    if seed < 0 or index < 0:
        raise ValueError("seed and index must be non-negative")
    rng = np.random.default_rng([seed, index])
    class_id = index % NUM_CLASSES
    radius = rng.uniform(*radius_range)
    cx, cy = 0.5 + rng.uniform(-max_shift, max_shift, size=2)
    order = SYMMETRY_ORDER[class_id]
    angle = rng.uniform(0, 2 * math.pi / order) if order else 0.0
    if rotation == "upright":
        angle = 0.0
    params = ShapeParams(class_id, float(cx), float(cy), float(radius), float(angle))
    if palette == "white":
        fg, bg = (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)
    elif palette == "fixed":
        fg, bg = FIXED_COLOURS[class_id], (0.0, 0.0, 0.0)
    else:
        while True:  # rejection sampling keeps the shape visible; the draw count is seed-determined
            fg, bg = rng.uniform(0, 1, size=3), rng.uniform(0, 1, size=3)
            if np.linalg.norm(fg - bg) >= _MIN_CONTRAST:
                break
        fg, bg = tuple(map(float, fg)), tuple(map(float, bg))
    return ShapeItem(params, fg, bg)


class ShapesDataset(Dataset):
    """Class-conditional procedural shapes: ``dataset[i] = (image [3, size, size] in [−1, 1], label)``.

    ``label`` is a 0-dim long tensor in ``[0, 8)``.  Items are rendered on the fly and are pure
    functions of ``(seed, i)`` (see :func:`sample_item`); :meth:`params` gives any item's exact geometry.
    """

    num_classes = NUM_CLASSES
    class_names = CLASS_NAMES

    def __init__(self, num_items: int = 50_000, size: int = 32, seed: int = 0, palette: str = "white",
                 radius_range: tuple[float, float] = (0.25, 0.42), max_shift: float = 0.06,
                 rotation: str = "upright", supersample: int = 4):
        if num_items < 1 or size < 4:
            raise ValueError("num_items must be >= 1 and size >= 4")
        lo, hi = radius_range
        if not 0 < lo <= hi or hi + max_shift > 0.5 or max_shift < 0:
            raise ValueError(f"radius_range {radius_range} with max_shift {max_shift} would leave the image")
        if palette not in PALETTES:
            raise ValueError(f"palette must be one of {PALETTES}, got {palette!r}")
        if rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation!r}")
        self.num_items, self.size, self.seed, self.palette = num_items, size, seed, palette
        self.rotation = rotation
        self.radius_range, self.max_shift, self.supersample = (lo, hi), max_shift, supersample
        self.image_shape = (3, size, size)

    def __len__(self) -> int:
        return self.num_items

    def item(self, index: int) -> ShapeItem:
        """Geometry and colours of item ``index`` (no rendering)."""
        if not 0 <= index < self.num_items:
            raise IndexError(f"index {index} out of range for {self.num_items} items")
        return sample_item(self.seed, index, self.palette, self.radius_range, self.max_shift, self.rotation)

    def params(self, index: int) -> ShapeParams:
        """The exact geometry of item ``index``."""
        return self.item(index).params

    def all_params(self) -> list[ShapeParams]:
        """Geometry of every item, in index order."""
        return [self.params(i) for i in range(self.num_items)]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        item = self.item(int(index))
        image = render_image(item, self.size, self.supersample)
        return torch.from_numpy(image), torch.tensor(item.params.class_id, dtype=torch.long)


# ---------------------------------------------------------------------------------------------
# Measuring a generated sample against its class template
# ---------------------------------------------------------------------------------------------
def _as_hwc(image) -> np.ndarray:
    """Tensor/array [C, H, W], [H, W, C] (C ≤ 4) or [H, W] -> float array [H, W, C]."""
    x = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    x = x.astype(np.float32)
    if x.ndim == 2:
        return x[..., None]
    if x.ndim == 3 and x.shape[0] in (1, 3, 4):  # channels-first (torch's convention wins ties)
        return np.moveaxis(x, 0, -1)
    if x.ndim == 3 and x.shape[-1] in (1, 3, 4):
        return x
    raise ValueError(f"expected an image [C, H, W], [H, W, C] or [H, W]; got shape {x.shape}")


def foreground_mask(image, background=None) -> np.ndarray:
    """Threshold an image into shape vs background: bool [H, W].

    The background colour is the per-channel median of the border pixels unless given; each pixel's
    distance to it is split into two classes by Otsu's threshold (maximal between-class variance).
    Works for any palette; an image with no contrast gives an all-False mask.
    """
    x = _as_hwc(image)
    if background is None:
        border = np.concatenate([x[0], x[-1], x[1:-1, 0], x[1:-1, -1]])
        background = np.median(border, axis=0)
    dist = np.linalg.norm(x - np.asarray(background, np.float32), axis=-1)
    top = float(dist.max())
    if top < 1e-3:
        return np.zeros(dist.shape, bool)
    hist, edges = np.histogram(dist, bins=64, range=(0.0, top))
    w0 = np.cumsum(hist).astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    m0 = np.cumsum(hist * centres)
    total, mtotal = w0[-1], m0[-1]
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = w0 * w1 * (m0 / w0 - (mtotal - m0) / w1) ** 2
    between = np.nan_to_num(between[:-1], nan=-1.0)
    threshold = edges[int(np.argmax(between)) + 1]
    return dist > threshold


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of equal shape (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def _ious(class_id: int, geometry: np.ndarray, target: np.ndarray, chunk: int = 128) -> np.ndarray:
    """IoU of the binary render (pixel centres) of each of B candidate geometries with ``target``."""
    x, y = _pixel_centres(target.shape[0])
    t = target.ravel()
    out = []
    for start in range(0, len(geometry), chunk):
        m = _distance_bound(class_id, geometry[start:start + chunk], x, y) <= 0
        inter = (m & t).sum(axis=1)
        union = (m | t).sum(axis=1)
        out.append(np.where(union > 0, inter / np.maximum(union, 1), 1.0))
    return np.concatenate(out)


def fit_template(image, class_id: int, rotation_steps: int = 48) -> tuple[ShapeParams, float]:
    """Fit the exact template of ``class_id`` to a (generated) image: ``(best params, IoU)``.

    ``image``: [C, H, W] / [H, W, C] / [H, W], square, any palette (thresholded by
    :func:`foreground_mask`).  Distortion is ``1 − IoU``.  Search: centre from the mask's centroid and
    radius from its area (all templates are centred on their centroid); then a rotation sweep over one
    symmetry period × 5 radii; then a pattern search over (centre, radius, rotation) with halving steps.
    IoU compares binary masks at pixel centres.  About 15 ms for a 32² image on one CPU core.
    """
    mask = foreground_mask(image)
    size = mask.shape[0]
    if mask.shape[1] != size:
        raise ValueError(f"fit_template expects a square image, got {mask.shape}")
    order = SYMMETRY_ORDER[class_id]
    period = 2 * math.pi / order if order else 0.0
    area = mask.mean()
    if area == 0:
        return ShapeParams(class_id, 0.5, 0.5, 0.0, 0.0), 0.0
    rows, cols = np.nonzero(mask)
    cx, cy = (cols.mean() + 0.5) / size, (rows.mean() + 0.5) / size
    r0 = math.sqrt(area / template_area(class_id))

    # Stage 1: rotation sweep × a few radii at the centroid.
    rots = np.arange(rotation_steps) * period / rotation_steps if order else np.zeros(1)
    radii = r0 * np.array([0.9, 0.95, 1.0, 1.05, 1.1])
    R, Rad = np.meshgrid(rots, radii, indexing="ij")
    cand = np.stack([np.full(R.size, cx), np.full(R.size, cy), Rad.ravel(), R.ravel()], 1)
    scores = _ious(class_id, cand, mask)
    best, best_iou = cand[int(np.argmax(scores))].astype(np.float64), float(scores.max())

    # Stage 2: pattern search on the 3^4 neighbourhood, halving the steps when nothing improves.
    pixel = 1.0 / size
    steps = np.array([0.5 * pixel, 0.5 * pixel, 0.04 * r0, (period / rotation_steps) if order else 0.0])
    offsets = np.stack(np.meshgrid(*[np.array([-1.0, 0.0, 1.0])] * 4, indexing="ij"), -1).reshape(-1, 4)
    for _ in range(40):
        cand = best[None] + offsets * steps[None]
        scores = _ious(class_id, cand, mask)
        i = int(np.argmax(scores))
        if scores[i] > best_iou + 1e-9:
            best, best_iou = cand[i].astype(np.float64), float(scores[i])
        else:
            steps = steps / 2
            if steps[0] < 0.05 * pixel:
                break
    rotation = float(best[3] % period) if order else 0.0
    return ShapeParams(class_id, float(best[0]), float(best[1]), float(best[2]), rotation), best_iou
