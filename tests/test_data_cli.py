"""`budgetnet data info` and `budgetnet augment`: output, files, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from budgetnet.cli.main import main

from data_fixtures import write_binary


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_data_info_text_and_json(tmp_path: Path, capsys) -> None:
    folder = write_binary(tmp_path / "src")
    code, out, _ = _run(capsys, "data", "info", str(folder), "--cache-dir", str(tmp_path / "c"))
    assert code == 0
    assert "format:    binary" in out and "checksums: mismatch (differ from the published MD5: data_batch_1.bin" in out
    assert "train: 20 images" in out and "test: 6 images" in out
    code, out, _ = _run(capsys, "data", "info", str(folder), "--json", "--cache-dir", str(tmp_path / "c"))
    info = json.loads(out)
    assert info["train"]["per_class"]["airplane"] == 2 and info["test"]["count"] == 6
    assert info["source"]["checksums"] == "mismatch" and len(info["train"]["mean"]) == 3


def test_bad_data_is_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    folder = write_binary(tmp_path / "src")
    (folder / "data_batch_2.bin").write_bytes(b"\x00" * 100)
    code, out, err = _run(capsys, "data", "info", str(folder), "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "data_batch_2.bin" in err and "Traceback" not in err


def test_augment_builds_reuses_and_shows(tmp_path: Path, capsys) -> None:
    folder = write_binary(tmp_path / "src")
    args = ("augment", "--data", str(folder), "--out", str(tmp_path / "store"), "--subset", "8", "--seed", "3",
            "--cache-dir", str(tmp_path / "c"))
    code, out, _ = _run(capsys, *args)
    assert code == 0 and "48 images = 8 x 6, seed 3" in out
    manifest = json.loads((tmp_path / "store" / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["subset"] == 8
    assert np.load(tmp_path / "store" / "images.npy").shape == (48, 3, 32, 32)
    before = (tmp_path / "store" / "images.npy").stat().st_mtime_ns
    assert _run(capsys, *args)[0] == 0
    assert (tmp_path / "store" / "images.npy").stat().st_mtime_ns == before  # reused, not rewritten
    code, out, _ = _run(capsys, "augment", "--data", str(folder), "--show", str(tmp_path / "grid.png"),
                        "--cache-dir", str(tmp_path / "c"))
    assert code == 0 and (tmp_path / "grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = _run(capsys, "augment", "--data", str(folder), "--subset", "21", "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and "--subset must be between 1 and 20" in err and err.count("\n") == 1
    code, _, err = _run(capsys, "augment", "--data", str(folder), "--device", "bogus", "--cache-dir", str(tmp_path / "c"))
    assert code == 2 and "unknown device 'bogus'" in err and err.count("\n") == 1
