"""--low-res-epochs: the first epochs train on scaled-down images (progressive resizing)."""

from __future__ import annotations

import pytest
import torch

import budgetnet.train.loop as loop
from budgetnet.counts import count_macs
from budgetnet.spec import ResNetSpec, StageSpec
from budgetnet.train.loop import scale_down
from budgetnet.train.recipe import RECIPES, RecipeError
from budgetnet.train.session import RunOptions, new_run
from test_train_cpu import TINY_CPU_SPEC, tiny_cpu
from test_train_fast import assert_mid_epoch_resume_is_bit_identical
from train_fixtures import fake_cifar

QUIET = RunOptions(quiet=True)


def test_scale_down_averages_pixels_rather_than_skipping_them():
    flat = torch.full((2, 3, 32, 32), 0.7)
    small = scale_down(flat, 24)
    assert small.shape == (2, 3, 24, 24) and small.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(small, torch.full((2, 3, 24, 24), 0.7))
    # a one-pixel checkerboard halved: sampling every other pixel would keep one colour, averaging gives grey
    checkers = (torch.arange(32).view(1, 32) + torch.arange(32).view(32, 1)) % 2
    halved = scale_down(checkers.float().expand(1, 3, 32, 32), 16)
    torch.testing.assert_close(halved[..., 1:-1, 1:-1], torch.full((1, 3, 14, 14), 0.5))


def test_only_the_first_epochs_train_small(tmp_path, monkeypatch, capsys):
    sizes = []
    original = loop.scale_down

    def recording(images, size):
        sizes.append(size)
        return original(images, size)

    monkeypatch.setattr(loop, "scale_down", recording)
    recipe = tiny_cpu(low_res_epochs=2, low_res_size=20, eval_every=3)
    outcome = new_run(TINY_CPU_SPEC, recipe, fake_cifar(n_train=96, n_test=30), tmp_path / "run", options=QUIET)
    steps_per_epoch = 96 // 16
    assert sizes == [20] * (2 * steps_per_epoch)  # epochs 1 and 2 only; epoch 3 and the test pass at 32 px
    assert [m["epoch"] for m in outcome.history] == [1, 2, 3]
    assert "note: epochs 1-2 train on images scaled down to 20 px" in capsys.readouterr().out


def test_a_low_res_run_resumes_mid_epoch_bit_identically(tmp_path):
    recipe = tiny_cpu(low_res_epochs=2, low_res_size=24)
    assert_mid_epoch_resume_is_bit_identical(TINY_CPU_SPEC, recipe, fake_cifar(n_train=96, n_test=30), tmp_path,
                                             stop_after=8)


def test_low_res_epochs_cost_fewer_macs_per_image():
    assert count_macs(TINY_CPU_SPEC, 24) < 0.6 * count_macs(TINY_CPU_SPEC, 32)


@pytest.mark.parametrize("changes, message", [
    ({"low_res_epochs": 18}, r"low-res epochs \(18\) must leave the last epoch at full size \(18 epochs\)"),
    ({"low_res_epochs": 2, "low_res_size": 1}, "low-res size must be 2-32 px, got 1"),
    ({"low_res_epochs": 2, "low_res_size": 40}, "low-res size must be 2-32 px, got 40"),
])
def test_bad_low_res_values_are_refused(changes, message):
    with pytest.raises(RecipeError, match=message):
        RECIPES["cpu"].replace(**changes)


def test_a_size_the_network_cannot_pool_is_refused_before_any_data_is_read(tmp_path):
    deep = ResNetSpec(tuple(StageSpec(1, 8, 2, "pool") for _ in range(4)), stem="whiten", stem_width=24, stem_kernel=2)
    with pytest.raises(RecipeError, match="--low-res-size 8 is too small for this network: .*leaves nothing"):
        new_run(deep, tiny_cpu(low_res_epochs=1, low_res_size=8), "no-such-data", tmp_path / "run", options=QUIET)
    assert not (tmp_path / "run").exists()


def test_with_epochs_moves_the_low_res_epochs_along():
    recipe = RECIPES["cpu"].replace(low_res_epochs=6)  # of 18
    assert recipe.with_epochs(9).low_res_epochs == 3
    assert recipe.with_epochs(2).low_res_epochs == 1  # the last epoch stays at full size
    assert RECIPES["cpu"].with_epochs(9).low_res_epochs == 0
