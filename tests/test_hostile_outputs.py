"""Output paths: every verb's --out is checked before any work, and OSErrors become one line by errno."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
from deploy_run import private_cache, tiny_run  # noqa: F401  (fixtures)
from hostile import fails_in_one_line, tiny, train_argv  # noqa: F401  (tiny is a fixture)

from budgetnet.cli.main import RUN_FAILED, USAGE_ERROR, describe_os_error, main

# verb -> argv with OUT where the output file goes; RUN is a trained run, DATA a path never read
# (each check must come before the data is loaded, so a missing dataset never gets to speak first)
FILE_OUTPUTS = {
    "export": ["export", "RUN", "--out", "OUT"],
    "quantize": ["quantize", "RUN", "--data", "DATA", "--out", "OUT"],
    "card": ["card", "RUN", "--out", "OUT"],
    "plot": ["plot", "RUN", "--out", "OUT"],
    "arch --plot": ["arch", "show", "approach-4", "--plot", "OUT"],
    "augment --show": ["augment", "--data", "DATA", "--show", "OUT"],
}
FIGURES = ("plot", "arch --plot", "augment --show")
DIR_OUTPUTS = {
    "train": ["train", "--arch", "approach-4", "--data", "DATA", "--out", "OUT"],
    "reproduce": ["reproduce", "--data", "DATA", "--archs", "approach-4", "--out", "OUT"],
    "augment --out": ["augment", "--data", "DATA", "--out", "OUT"],
}


def _argv(template: list[str], run: Path, out: Path, data: Path) -> list[str]:
    return [{"RUN": str(run), "OUT": str(out), "DATA": str(data)}.get(a, a) for a in template]


def _bad_out(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """An output path of the given kind, and what its one line must say."""
    if kind == "directory":
        (tmp_path / "folder").mkdir()
        return tmp_path / "folder", "is a directory"
    if kind == "under a file":
        (tmp_path / "file").write_text("mine")
        return tmp_path / "file" / "out.png", "is a file, not a folder"
    if kind == "unknown suffix":
        return tmp_path / "curves.xyz", "unknown image format"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["directory", "under a file", "unknown suffix"])
@pytest.mark.parametrize("verb", list(FILE_OUTPUTS))
def test_file_outputs_refuse_bad_paths_first(verb: str, kind: str, tiny_run: Path, tmp_path: Path, capsys) -> None:
    if kind == "unknown suffix" and verb not in FIGURES:
        pytest.skip("only figures have a suffix to check")
    out, expected = _bad_out(kind, tmp_path)
    fails_in_one_line(capsys, _argv(FILE_OUTPUTS[verb], tiny_run, out, tmp_path / "no-data"), USAGE_ERROR, expected)


def test_figure_formats_matplotlib_writes_are_accepted(tmp_path: Path, capsys) -> None:
    for name in ("a.svg", "a.PDF", "a.png"):
        assert main(["arch", "show", "approach-4", "--plot", str(tmp_path / name)]) == 0
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize("kind", ["existing file", "under a file"])
@pytest.mark.parametrize("verb", list(DIR_OUTPUTS))
def test_directory_outputs_refuse_files(verb: str, kind: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("mine")
    out = tmp_path / "file" if kind == "existing file" else tmp_path / "file" / "run"
    expected = "is a file, not a directory" if kind == "existing file" else "is a file, not a folder"
    fails_in_one_line(capsys, _argv(DIR_OUTPUTS[verb], tmp_path, out, tmp_path / "no-data"), USAGE_ERROR, expected)
    assert (tmp_path / "file").read_text() == "mine"


def test_eval_refuses_an_output_that_is_a_directory(tiny_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("export"))
    (run / "eval.json").mkdir()
    fails_in_one_line(capsys, ["eval", run, "--data", tmp_path / "no-data"], USAGE_ERROR, "is a directory")


def test_train_never_writes_into_a_folder_of_the_users_files(tiny: dict, capsys) -> None:
    mine = tiny["tmp"] / "mine"
    mine.mkdir()
    (mine / "spec.json").write_text('{"my": "notes"}')
    (mine / "env.json").write_text("my env")
    fails_in_one_line(capsys, train_argv(tiny, mine), USAGE_ERROR, "holds files budgetnet did not write")
    assert (mine / "spec.json").read_text() == '{"my": "notes"}' and (mine / "env.json").read_text() == "my env"
    assert sorted(p.name for p in mine.iterdir()) == ["env.json", "spec.json"]


def test_train_into_an_empty_folder_then_again_into_its_run(tiny: dict, capsys) -> None:
    out = tiny["tmp"] / "empty"
    out.mkdir()
    assert main(train_argv(tiny, out)) == 0
    assert json.loads((out / ".budgetnet-run").read_text())["kind"] == "budgetnet-run"
    fails_in_one_line(capsys, train_argv(tiny, out), USAGE_ERROR, f"continue it with --resume {out}")


def test_augment_out_refuses_a_folder_of_other_files(tiny: dict, capsys) -> None:
    folder = tiny["tmp"] / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"not ours")
    fails_in_one_line(capsys, ["augment", "--data", tiny["data"], "--out", folder, "--subset", "10"],
                      USAGE_ERROR, "not part of an augmentation store")
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"]


@pytest.mark.parametrize("number, code, line", [
    (errno.ENOSPC, RUN_FAILED, "disk full: /x/y"),
    (errno.EDQUOT, RUN_FAILED, "disk quota exceeded: /x/y"),
    (errno.EIO, RUN_FAILED, "I/O error: /x/y"),
    (errno.EISDIR, USAGE_ERROR, "/x/y: is a directory"),
    (errno.ENOTDIR, USAGE_ERROR, "/x/y: a parent is not a directory"),
    (errno.EEXIST, USAGE_ERROR, "/x/y: already exists"),
    (errno.EACCES, USAGE_ERROR, "/x/y: permission denied"),
    (errno.EROFS, USAGE_ERROR, "/x/y: read-only file system"),
    (errno.ENOENT, USAGE_ERROR, "/x/y: no such file or directory"),
])
def test_os_errors_map_by_errno(number: int, code: int, line: str) -> None:
    assert describe_os_error(OSError(number, "strerror", "/x/y")) == (line, code)


def test_an_os_error_in_any_verb_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import budgetnet.cli.arch as arch

    def full(args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")  # a failed write() names no file

    monkeypatch.setattr(arch, "run_list", full)
    fails_in_one_line(capsys, ["arch", "list"], RUN_FAILED, "budgetnet: error: disk full")

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(arch, "run_list", interrupted)
    fails_in_one_line(capsys, ["arch", "list"], 130, "interrupted")
