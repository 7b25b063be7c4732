"""Spec files: a file that is not UTF-8 is one line, and a spec that does not fit the data is refused
before anything is built or trained, leaving nothing behind that would block --out."""

from __future__ import annotations

import dataclasses
import time

import pytest
from hostile import fails_in_one_line, tiny, train_argv  # noqa: F401  (tiny is a fixture)
from train_fixtures import TINY_SPEC

from budgetnet.cli.main import USAGE_ERROR, main


def test_a_spec_file_that_is_not_utf8_is_one_line(tiny: dict, capsys) -> None:
    spec = tiny["tmp"] / "latin1.json"
    spec.write_bytes(TINY_SPEC.to_json().replace('"stages"', '"stagés"').encode("latin-1"))
    fails_in_one_line(capsys, ["arch", "show", spec], USAGE_ERROR, "not UTF-8 text")
    fails_in_one_line(capsys, ["train", "--arch", spec, "--data", tiny["data"]], USAGE_ERROR, "not UTF-8 text")


@pytest.mark.parametrize("field, value, expected", [
    ("num_classes", 7, "num_classes 7 but the data has 10 classes"),
    ("num_classes", 12, "num_classes 12 but the data has 10 classes"),
    ("in_channels", 1, "in_channels 1 but the data's images have 3 channels"),
])
def test_a_spec_that_does_not_fit_the_data_is_refused_before_training(field, value, expected, tiny, capsys) -> None:
    spec = tiny["tmp"] / "wrong.json"
    dataclasses.replace(TINY_SPEC, **{field: value}).save(spec)
    out = tiny["tmp"] / "run"
    argv = train_argv(tiny, out)
    argv[argv.index("--arch") + 1] = str(spec)
    start = time.perf_counter()
    fails_in_one_line(capsys, argv, USAGE_ERROR, expected)
    assert time.perf_counter() - start < 10
    assert not out.exists() and not (tiny["tmp"] / "cache" / "stores").exists()  # nothing built, nothing left
    assert main(train_argv(tiny, out)) == 0  # the same --out takes the corrected spec
