"""Test-time augmentation: the views `evaluate` averages, and the fewer-view accuracies it reports beside them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from budgetnet.train.batches import ImageSet, Normalizer
from budgetnet.train.evaluation import evaluate, tta_views
from budgetnet.train.recipe import RECIPES, RecipeError


def test_the_views_are_the_image_its_mirror_and_both_moved_diagonally_each_way() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    assert len(tta_views(x)) == 2 and torch.equal(tta_views(x)[1], x.flip(3))
    views = tta_views(x, shift=2)
    assert len(views) == 6 and all(v.shape == x.shape for v in views)
    down_right, up_left = views[2], views[4]
    assert torch.equal(down_right[..., 2:, 2:], x[..., :-2, :-2])
    assert torch.equal(up_left[..., :-2, :-2], x[..., 2:, 2:])
    assert torch.equal(views[3], down_right.flip(3)) and torch.equal(views[5], up_left.flip(3))
    assert torch.equal(down_right[..., 0, 2:], x[..., 2, :-2])  # reflect padding: row 0 mirrors row 2


class PixelVote(nn.Module):
    """Class scores read off fixed pixels: each image's answer depends on where and which way up it is."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[:, 0, 1, 1], x[:, 0, 1, 6], x[:, 0, 6, 1], x[:, 0, 4, 4]], dim=1) * 10


def _images(n: int = 200, seed: int = 0) -> ImageSet:
    g = np.random.default_rng(seed)
    images = g.integers(0, 256, size=(n, 3, 8, 8), dtype=np.uint8)
    return ImageSet(images, g.integers(0, 4, size=n).astype(np.int64))


def _run(data: ImageSet, tta: bool, shift: int = 0):
    return evaluate(PixelVote(), data, Normalizer((0.5,) * 3, (0.25,) * 3), torch.device("cpu"), tta=tta,
                    tta_shift=shift, batch_size=64)


def test_shifted_tta_reports_the_flip_pair_and_the_single_view_as_fewer_views_measure_them() -> None:
    data = _images()
    plain, flip, shifted = _run(data, False), _run(data, True), _run(data, True, shift=1)
    assert plain.single_view_accuracy is None and flip.flip_accuracy is None
    assert flip.single_view_accuracy == shifted.single_view_accuracy == plain.accuracy
    assert shifted.flip_accuracy == flip.accuracy
    assert shifted.accuracy != flip.accuracy  # the shifted views change this position-bound model's answers
    assert not np.array_equal(shifted.predictions, flip.predictions)


def test_the_shifted_views_weigh_half_beside_the_unshifted_pair() -> None:
    data = _images(n=50, seed=1)
    x = Normalizer((0.5,) * 3, (0.25,) * 3)(torch.as_tensor(data.images))
    probs = [PixelVote()(v).softmax(1) for v in tta_views(x, 1)]
    expected = ((probs[0] + probs[1]) / 2 + sum(probs[2:]) / 4) / 2
    labels = torch.as_tensor(data.labels)
    loss = -expected[torch.arange(len(labels)), labels].log().mean().item()
    assert _run(data, True, shift=1).loss == pytest.approx(loss, rel=1e-5)


def test_a_tta_shift_needs_tta_and_a_small_shift() -> None:
    with pytest.raises(RecipeError, match="needs --tta"):
        RECIPES["paper"].replace(tta_shift=1)
    with pytest.raises(RecipeError, match="tta shift must be 0-4"):
        RECIPES["paper"].replace(tta=True, tta_shift=5)


def test_turning_tta_off_turns_its_shifted_views_off_unless_they_are_asked_for() -> None:
    assert RECIPES["cpu"].tta_shift > 0
    assert RECIPES["cpu"].replace(tta=False).tta_shift == 0
    with pytest.raises(RecipeError, match="needs --tta"):
        RECIPES["cpu"].replace(tta=False, tta_shift=1)
