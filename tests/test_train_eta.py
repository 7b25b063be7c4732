"""The time left that epoch lines print: from the finished epochs' training and test-pass times."""

from __future__ import annotations

import pytest

from budgetnet.train.eta import seconds_left, time_left_text
from budgetnet.train.recipe import Recipe

PLAIN = Recipe(epochs=3, milestones=())  # a test pass after every epoch
LOW_RES = Recipe(epochs=4, milestones=(), low_res_epochs=2, low_res_size=16, eval_every=2)


def line(epoch: int, seconds: float, train_seconds: float | None = None) -> dict:
    m = {"epoch": epoch, "seconds": seconds}
    if train_seconds is not None:
        m["train_seconds"] = train_seconds
    return m


def test_each_remaining_epoch_takes_as_long_as_the_last_with_its_test_pass() -> None:
    assert seconds_left([line(1, 12.0, 10.0)], PLAIN, 32) == pytest.approx(2 * (10 + 2))
    assert seconds_left([line(1, 12.0, 10.0), line(2, 15.0, 11.0)], PLAIN, 32) == pytest.approx(11 + 4)
    assert seconds_left([line(1, 12.0, 10.0), line(2, 15.0, 11.0), line(3, 14.0, 11.0)], PLAIN, 32) == 0.0


def test_full_size_epochs_not_yet_seen_scale_the_low_res_ones_by_pixels() -> None:
    # epoch 2 is low-res (9 s), epochs 3 and 4 are 4x the pixels of 16 px; no test pass measured yet
    assert seconds_left([line(1, 9.0, 9.0)], LOW_RES, 32) == pytest.approx(9 + 2 * 36)
    history = [line(1, 9.0, 9.0), line(2, 12.0, 9.0), line(3, 30.0, 30.0)]  # epoch 2's test pass took 3 s
    assert seconds_left(history, LOW_RES, 32) == pytest.approx(30 + 3)


def test_lines_from_before_train_seconds_count_as_training_alone() -> None:
    assert seconds_left([line(1, 12.0)], PLAIN, 32) == pytest.approx(24.0)


def test_the_text_is_empty_at_the_end_and_before_the_start() -> None:
    assert seconds_left([], PLAIN, 32) is None
    assert time_left_text(None) == "" and time_left_text(0.0) == ""
    assert time_left_text(42.4) == ", about 42 s left"
    assert time_left_text(30 * 60 + 20) == ", about 30 min left"


def test_a_recipe_tests_after_every_eval_every_th_epoch_and_the_last() -> None:
    assert [e for e in range(1, 5) if LOW_RES.tests_after(e)] == [2, 4]
    assert [e for e in range(1, 6) if LOW_RES.replace(epochs=5).tests_after(e)] == [2, 4, 5]
