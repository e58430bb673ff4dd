"""The procedural shapes dataset: determinism, exact geometry, palettes, template fitting, factory."""
import math

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dimr.data import DATASETS, build_dataset
from dimr.data.shapes import (CLASS_NAMES, FIXED_COLOURS, NUM_CLASSES, SYMMETRY_ORDER, ShapeParams,
                              ShapesDataset, fit_template, foreground_mask, mask_iou, render_mask,
                              sample_item, template_area)


def test_item_contract():
    ds = ShapesDataset(num_items=20, size=32, seed=0)
    assert len(ds) == 20 and ds.num_classes == NUM_CLASSES == 8 and len(CLASS_NAMES) == 8
    x, y = ds[5]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.long and y.ndim == 0 and int(y) == 5
    assert x.min() == -1 and x.max() == 1  # white shape fully covers some pixels, black background others
    assert ShapesDataset(4, size=64)[0][0].shape == (3, 64, 64)
    with pytest.raises(IndexError):
        ds.params(20)


def test_items_are_pure_functions_of_seed_and_index():
    a, b = ShapesDataset(64, seed=7), ShapesDataset(64, seed=7)
    backwards = {i: a[i][0] for i in reversed(range(64))}
    for i in range(64):
        assert torch.equal(backwards[i], b[i][0])
    # Parallel readers (DataLoader workers, DDP ranks) see the same items.
    loaded = torch.cat([x for x, _ in DataLoader(b, batch_size=8, num_workers=2)])
    assert torch.equal(loaded, torch.stack([backwards[i] for i in range(64)]))
    other = ShapesDataset(64, seed=8)
    assert sum(torch.equal(a[i][0], other[i][0]) for i in range(8, 16)) < 3  # circles may coincide rarely


def test_labels_cycle_so_classes_are_balanced():
    ds = ShapesDataset(80)
    labels = [int(ds[i][1]) for i in range(80)]
    assert labels == [i % 8 for i in range(80)]
    assert all(ds.params(i).class_id == labels[i] for i in range(80))
    assert len(ds.all_params()) == 80


def test_parameter_distribution():
    ds = ShapesDataset(400, seed=4, radius_range=(0.25, 0.42), max_shift=0.06, rotation="random")
    ps = ds.all_params()
    radius = np.array([p.radius for p in ps])
    shift = np.array([[p.cx - 0.5, p.cy - 0.5] for p in ps])
    assert 0.25 <= radius.min() < 0.27 and 0.40 < radius.max() <= 0.42
    assert np.abs(shift).max() <= 0.06 and np.abs(shift).max() > 0.055
    assert len(set(radius.tolist())) == 400  # every item draws its own parameters
    for c in range(NUM_CLASSES):
        rot = np.array([p.rotation for p in ps if p.class_id == c])
        if SYMMETRY_ORDER[c]:  # one symmetry period, well covered
            period = 2 * math.pi / SYMMETRY_ORDER[c]
            assert rot.min() >= 0 and rot.max() < period and rot.max() - rot.min() > 0.8 * period
        else:
            assert (rot == 0).all()
    # (seed, index) pairs do not alias: seed 0's item 1 is not seed 1's item 0 shifted.
    assert sample_item(0, 9).params.radius != sample_item(1, 8).params.radius


def test_upright_is_the_default_and_differs_only_in_rotation():
    upright, turned = ShapesDataset(80, seed=4), ShapesDataset(80, seed=4, rotation="random")
    assert upright.rotation == "upright"
    for i in range(80):
        a, b = upright.params(i), turned.params(i)
        assert a.rotation == 0.0
        assert (a.class_id, a.cx, a.cy, a.radius) == (b.class_id, b.cx, b.cy, b.radius)
    assert sum(turned.params(i).rotation != 0.0 for i in range(80)) == 60  # all but circles and rings
    with pytest.raises(ValueError, match="rotation"):
        ShapesDataset(4, rotation="sideways")


def test_shapes_stay_inside_the_image():
    ds = ShapesDataset(64, seed=6, radius_range=(0.4, 0.44), max_shift=0.06, rotation="random")
    for i in range(64):
        m = render_mask(ds.params(i), 128, supersample=1)
        assert m[[0, -1]].sum() == 0 and m[:, [0, -1]].sum() == 0
        p = ds.params(i)  # the radius is the circumradius: the shape touches its circle
        far = max(abs(p.cx - 0.5), abs(p.cy - 0.5)) + p.radius
        assert far <= 0.5
    cross = ShapeParams(CLASS_NAMES.index("cross"), 0.5, 0.5, 0.4, 0.0)
    w = 0.34  # the outer corners of the cross's arms sit on its circle
    corner = np.array([w, math.sqrt(1 - w * w)]) * 0.4
    assert _inside(cross, *(0.5 + 0.98 * corner)) and not _inside(cross, *(0.5 + 1.02 * corner))


def test_rendered_area_matches_exact_template_area():
    for c in range(NUM_CLASSES):
        p = ShapeParams(c, 0.5, 0.5, 0.4, 0.37)
        area = render_mask(p, 128, supersample=4).mean()
        assert area == pytest.approx(template_area(c) * 0.4 ** 2, rel=0.01), CLASS_NAMES[c]


def test_supersampling_is_the_fine_binary_grid_averaged():
    # size 32 × 4 supersamples and the binary 128² mask sample the same points, so geometry is
    # resolution-independent and skipping the pixels no edge can cross loses nothing.
    for c in range(NUM_CLASSES):
        for i in (c, c + 8):
            p = sample_item(3, i).params
            m32 = render_mask(p, 32, supersample=4)
            fine = render_mask(p, 128, supersample=1)
            assert set(np.unique(fine)) == {0.0, 1.0}
            np.testing.assert_allclose(m32, fine.reshape(32, 4, 32, 4).mean(axis=(1, 3)), atol=1e-6)
            assert 0 < ((m32 > 0) & (m32 < 1)).sum() < 0.3 * m32.size  # anti-aliased edges only


def _inside(params, x, y, size=512):
    """Whether the point (x, y) (normalised coordinates) is inside the shape."""
    mask = render_mask(params, size, supersample=1)
    return bool(mask[int(y * size), int(x * size)])


def test_template_conventions():
    r, c = 0.3, 0.5
    tri = ShapeParams(CLASS_NAMES.index("triangle"), c, c, r, 0.0)
    assert _inside(tri, c, c - 0.95 * r) and not _inside(tri, c, c + 0.6 * r)  # vertex up, base at +r/2
    down = ShapeParams(tri.class_id, c, c, r, math.pi / 3)  # half a period: rotated to point down
    assert _inside(down, c, c + 0.95 * r) and not _inside(down, c, c - 0.6 * r)
    sq = ShapeParams(CLASS_NAMES.index("square"), c, c, r, 0.0)  # a diamond at rotation 0
    assert _inside(sq, c + 0.95 * r, c) and not _inside(sq, c + 0.55 * r, c + 0.55 * r)
    ring = ShapeParams(CLASS_NAMES.index("ring"), c, c, r, 0.0)
    assert not _inside(ring, c, c) and _inside(ring, c + 0.8 * r, c) and not _inside(ring, c + 1.05 * r, c)
    assert _inside(ShapeParams(0, c, c, r, 0.0), c, c)
    star = ShapeParams(CLASS_NAMES.index("star"), c, c, r, 0.0)
    tip, notch = -math.pi / 2, -math.pi / 2 + math.pi / 5
    assert _inside(star, c + 0.6 * r * math.cos(tip), c + 0.6 * r * math.sin(tip))
    assert not _inside(star, c + 0.6 * r * math.cos(notch), c + 0.6 * r * math.sin(notch))
    cross = ShapeParams(CLASS_NAMES.index("cross"), c, c, r, 0.0)
    assert _inside(cross, c + 0.9 * r, c) and not _inside(cross, c + 0.6 * r, c + 0.6 * r)


def test_palettes():
    white, fixed, rand = (ShapesDataset(16, seed=1, palette=p) for p in ("white", "fixed", "random"))
    for i in range(16):
        # Geometry does not depend on the palette.
        assert white.params(i) == fixed.params(i) == rand.params(i)
        assert mask_iou(foreground_mask(white[i][0]), foreground_mask(rand[i][0])) > 0.97
    x = white[0][0]
    assert torch.allclose(x[0], x[1]) and torch.allclose(x[1], x[2])  # grey
    for i in range(NUM_CLASSES - 1):  # the ring's centre is background; all others are foreground there
        p = fixed.params(i)
        centre = fixed[i][0][:, int(p.cy * 32), int(p.cx * 32)]
        assert torch.allclose(centre, torch.tensor(FIXED_COLOURS[i]) * 2 - 1, atol=1e-6)
    item = rand.item(3)
    assert np.linalg.norm(np.subtract(item.foreground, item.background)) >= 0.6
    assert not torch.equal(rand[3][0], white[3][0])
    with pytest.raises(ValueError):
        ShapesDataset(4, palette="neon")
    with pytest.raises(ValueError):
        ShapesDataset(4, radius_range=(0.3, 0.48))  # with the shift, shapes would leave the image


def test_item_params_describe_the_image():
    ds = ShapesDataset(16, seed=2, palette="random")
    for i in range(16):
        exact = render_mask(ds.params(i), 32) >= 0.5
        assert mask_iou(foreground_mask(ds[i][0]), exact) > 0.95


@pytest.mark.parametrize("palette", ["white", "random"])
def test_fit_template_recovers_parameters(palette):
    ds = ShapesDataset(16, seed=11, palette=palette, rotation="random")
    for i in range(16):
        true = ds.params(i)
        fit, iou = fit_template(ds[i][0], true.class_id)
        assert iou > 0.9, CLASS_NAMES[true.class_id]
        assert abs(fit.cx - true.cx) * 32 < 0.5 and abs(fit.cy - true.cy) * 32 < 0.5
        assert fit.radius == pytest.approx(true.radius, rel=0.04)
        order = SYMMETRY_ORDER[true.class_id]
        if order:
            period = 2 * math.pi / order
            err = (fit.rotation - true.rotation + period / 2) % period - period / 2
            assert abs(math.degrees(err)) < 4


def test_fit_template_measures_distortion():
    ds = ShapesDataset(8, seed=0)
    for i in range(8):
        x = ds[i][0]
        ious = [fit_template(x, c)[1] for c in range(NUM_CLASSES)]
        assert ious[i] > 0.95 and ious[i] > max(ious[:i] + ious[i + 1:]) + 0.02, CLASS_NAMES[i]
        damaged = x.clone()
        damaged[:, :, :16] = -1  # erase the left half of the shape
        assert fit_template(damaged, i)[1] < 0.75
    assert fit_template(-torch.ones(3, 32, 32), 0)[1] == 0.0


def test_build_dataset_factory():
    assert set(DATASETS) == {"shapes", "fashion-mnist", "imagenet", "latents"}
    ds = build_dataset(num_items=10, palette="fixed")
    assert isinstance(ds, ShapesDataset) and len(ds) == 10 and ds.palette == "fixed"
    assert isinstance(build_dataset("Shapes", num_items=3), ShapesDataset)
    with pytest.raises(ValueError, match="fashion-mnist"):
        build_dataset("cifar10")
    with pytest.raises(TypeError, match="num_items"):
        build_dataset("shapes", n_items=3)
