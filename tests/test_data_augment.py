"""Each augmentation's defining property, checked on synthetic images and on its random parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from budgetnet.data.augment import (AugmentRecipe, COPIES, augment_copy, color_jitter, hflip, online_augment,
                                    pad_crop, random_hflip, resize_crop, rotate, sample_params)

N = 64


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randint(0, 256, (N, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def params():
    return sample_params(N, torch.Generator().manual_seed(2))


def test_flip_is_an_exact_mirror(images, params) -> None:
    mirrored = hflip(images)
    for j in range(32):
        assert torch.equal(mirrored[..., j], images[..., 31 - j])
    assert torch.equal(augment_copy(1, images, params), mirrored)
    flips = params.flips[0]
    out = random_hflip(images, flips)
    assert torch.equal(out[flips], mirrored[flips]) and torch.equal(out[~flips], images[~flips])


def test_pad_crop_is_a_translation_within_4_with_zero_fill(images, params) -> None:
    offsets = params.pad_offsets
    assert offsets.min() >= 0 and offsets.max() <= 8 and len(offsets.unique()) == 9  # shifts -4..4 all occur
    out = pad_crop(images, offsets).numpy()
    src = images.numpy()
    for b in range(N):
        dy, dx = (offsets[b] - 4).tolist()
        expected = np.zeros_like(src[b])
        ys, xs = slice(max(0, -dy), min(32, 32 - dy)), slice(max(0, -dx), min(32, 32 - dx))
        expected[:, ys, xs] = src[b][:, ys.start + dy : ys.stop + dy, xs.start + dx : xs.stop + dx]
        np.testing.assert_array_equal(out[b], expected)


def test_the_random_flip_is_folded_in_exactly(images, params) -> None:
    flips = params.flips[1]
    flipped = random_hflip(images, flips)
    assert torch.equal(pad_crop(images, params.pad_offsets, flips), pad_crop(flipped, params.pad_offsets))
    assert torch.equal(resize_crop(images, params.resize_offsets, flips), resize_crop(flipped, params.resize_offsets))
    diff = rotate(images, params.angles, flips).int() - rotate(flipped, params.angles).int()
    assert diff.abs().max() <= 1  # same sampling points, float rounding may move one level
    assert torch.equal(color_jitter(images, params.factors, params.hue_shifts, flips),
                       color_jitter(flipped, params.factors, params.hue_shifts))


def test_resize_crop_scales_by_36_over_32_then_crops(images, params) -> None:
    offsets = params.resize_offsets
    assert offsets.min() >= 0 and offsets.max() <= 4
    out = resize_crop(images, offsets)
    assert out.shape == (N, 3, 32, 32) and out.dtype == torch.uint8
    grey = torch.full((2, 3, 32, 32), 77, dtype=torch.uint8)
    assert (resize_crop(grey, offsets[:2]) == 77).all()  # resampling keeps flat regions flat
    reference = F.interpolate(images.float(), size=(36, 36), mode="bilinear", antialias=True, align_corners=False)
    for b in range(4):
        y, x = offsets[b].tolist()
        window = reference[b, :, y : y + 32, x : x + 32]
        assert (out[b].float() - window).abs().max() <= 1.01  # the uint8 fast path rounds within a level


def test_rotation_angles_stay_within_90_degrees_and_rotate_counter_clockwise(images) -> None:
    for seed in range(5):
        angles = sample_params(10_000, torch.Generator().manual_seed(seed)).angles
        assert angles.min() >= -90 and angles.max() <= 90
        assert angles.min() < -89 and angles.max() > 89  # the whole range is used
    assert torch.equal(rotate(images, torch.zeros(N)), images)
    assert torch.equal(rotate(images, torch.full((N,), 90.0)), torch.rot90(images, 1, dims=(-2, -1)))
    assert torch.equal(rotate(images, torch.full((N,), -90.0)), torch.rot90(images, -1, dims=(-2, -1)))
    white = torch.full((1, 3, 32, 32), 255, dtype=torch.uint8)
    turned = rotate(white, torch.tensor([45.0]))
    assert (turned[..., 0, 0] == 0).all() and (turned[..., 16, 16] == 255).all()  # zeros fill the corners


def test_jitter_factors_and_hue_stay_within_their_ranges() -> None:
    recipe = AugmentRecipe()
    p = sample_params(10_000, torch.Generator().manual_seed(3), recipe)
    assert p.factors.min() >= 0.5 and p.factors.max() <= 1.5
    assert p.factors.min() < 0.51 and p.factors.max() > 1.49
    assert p.hue_shifts.abs().max() <= recipe.max_hue and p.hue_shifts.abs().max() > 0.99 * recipe.max_hue
    assert 0.45 < p.flips.float().mean() < 0.55


def _jitter(image: torch.Tensor, b=1.0, c=1.0, s=1.0, h=0.0) -> torch.Tensor:
    return color_jitter(image, torch.tensor([[b, c, s]]), torch.tensor([h]))


def test_jitter_matches_torchvision_definitions() -> None:
    mid = torch.full((1, 3, 32, 32), 100, dtype=torch.uint8)
    assert (_jitter(mid, b=1.3) == 130).all()  # brightness scales
    assert (_jitter(mid, b=1.5, c=0.5, s=1.5, h=0.08) == 150).all()  # grey stays grey under c, s and hue
    ramp = torch.arange(32, dtype=torch.uint8).mul(4).expand(1, 3, 32, 32).contiguous()
    assert torch.equal(_jitter(ramp, c=0.5).float(), (ramp.float() * 0.5 + ramp.float().mean() * 0.5).add(0.5).floor())
    colour = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    colour[:, 0] = 200
    colour[:, 1] = 100
    grey = int(0.299 * 200 + 0.587 * 100 + 0.5)  # 118.5, rounded half up
    assert (_jitter(colour, s=0.0) == grey).all()  # saturation 0 is the greyscale image
    assert torch.equal(_jitter(colour, h=1.0), colour)  # a full turn of hue changes nothing
    red = torch.zeros(1, 3, 1, 1, dtype=torch.uint8)
    red[:, 0] = 200
    warmer = _jitter(red, h=0.05)[0, :, 0, 0]
    assert warmer[1] > 0 and warmer[1] > warmer[2]  # positive shifts go red -> yellow, as HSV hue does


def test_every_copy_is_uint8_32x32_and_copy_0_is_the_original(images, params) -> None:
    for copy in range(COPIES):
        out = augment_copy(copy, images, params)
        assert out.dtype == torch.uint8 and out.shape == (N, 3, 32, 32)
    assert torch.equal(augment_copy(0, images, params), images)
    with pytest.raises(ValueError):
        augment_copy(6, images, params)


def test_params_are_deterministic_and_chunk_independent(images) -> None:
    a = sample_params(N, torch.Generator().manual_seed(7))
    b = sample_params(N, torch.Generator().manual_seed(7))
    for field in ("flips", "pad_offsets", "resize_offsets", "angles", "factors", "hue_shifts"):
        assert torch.equal(getattr(a, field), getattr(b, field))
    whole = augment_copy(4, images, a)
    parts = torch.cat([augment_copy(4, images[s : s + 10], a.take(s, s + 10)) for s in range(0, N, 10)])
    assert torch.equal(whole, parts)


def test_online_augment_is_a_flip_plus_translation(images) -> None:
    out = online_augment(images, torch.Generator().manual_seed(0))
    again = online_augment(images, torch.Generator().manual_seed(0))
    assert out.dtype == torch.uint8 and out.shape == images.shape and torch.equal(out, again)
    candidates = [pad_crop(src, torch.tensor([[y, x]] * N)) for src in (images, hflip(images))
                  for y in range(9) for x in range(9)]
    matches = torch.stack([(c == out).flatten(1).all(1) for c in candidates]).any(0)
    assert matches.all()
    assert not torch.equal(out, online_augment(images, torch.Generator().manual_seed(1)))
