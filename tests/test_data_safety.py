"""The restricted unpickler runs nothing from a file; --download verifies the MD5 and extracts safely."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from budgetnet.data import load_cifar
from budgetnet.data.download import download_cifar, verify_and_extract
from budgetnet.data.safe_pickle import safe_loads
from budgetnet.errors import DataError

from data_fixtures import synthetic, tree_members, write_python, write_tar


class _Exploit:
    """Unpickling this would call os.system(command)."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def test_pickle_naming_os_system_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"data": _Exploit(f"touch {marker}"), "labels": [0]}, protocol=2)
    assert b"system" in payload  # the crafted file really references os.system (posix.system here)
    with pytest.raises(DataError, match=r"refused global (os|posix)\.system"):
        safe_loads(payload, "evil_batch")
    assert not marker.exists()
    # the same file inside a dataset folder: refused with the file named, still nothing executed
    folder = write_python(tmp_path / "src")
    (folder / "data_batch_3").write_bytes(payload)
    with pytest.raises(DataError, match="data_batch_3: not a safe CIFAR batch pickle"):
        load_cifar(folder, cache_dir=tmp_path / "cache")
    assert not marker.exists()


def test_other_codecs_and_builtins_are_refused() -> None:
    import codecs

    class _Codec:
        def __reduce__(self):
            return (codecs.encode, ("x", "rot13"))

    with pytest.raises(DataError, match="refused codec"):
        safe_loads(pickle.dumps(_Codec(), protocol=2), "f")
    with pytest.raises(DataError, match=r"refused global (builtins|__builtin__)\.eval"):
        safe_loads(pickle.dumps(eval, protocol=2), "f")


def test_official_style_python2_pickle_loads() -> None:
    # the official files name numpy.core.multiarray and store strings as Python-2 str (SHORT_BINSTRING)
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    payload = pickle.dumps({"data": array, "labels": [1, 2]}, protocol=2)
    payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    loaded = safe_loads(payload, "f")
    np.testing.assert_array_equal(loaded["data"], array)


def _official_like_archive(tmp_path: Path) -> tuple[Path, str]:
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz", tree_members(write_python(tmp_path / "src")))
    return archive, hashlib.md5(archive.read_bytes()).hexdigest()


def test_verify_and_extract_checks_md5_then_extracts(tmp_path: Path) -> None:
    archive, md5 = _official_like_archive(tmp_path)
    with pytest.raises(DataError, match="does not match the published"):
        verify_and_extract(archive, tmp_path / "out", md5="0" * 32)
    assert not (tmp_path / "out" / "cifar-10-batches-py").exists()
    target = verify_and_extract(archive, tmp_path / "out", md5=md5)
    assert sorted(p.name for p in target.iterdir()) == sorted(p.name for p in (tmp_path / "src" / "cifar-10-batches-py").iterdir())
    np.testing.assert_array_equal(load_cifar(target, cache_dir=tmp_path / "cache").train_images, synthetic()[0])


@pytest.mark.parametrize("name, kind", [("../escape.txt", tarfile.REGTYPE), ("/abs.txt", tarfile.REGTYPE),
                                        ("cifar-10-batches-py/link", tarfile.SYMTYPE)])
def test_unsafe_members_are_refused(tmp_path: Path, name: str, kind: bytes) -> None:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else ""
        info.size = 0 if kind == tarfile.SYMTYPE else 3
        tar.addfile(info, None if kind == tarfile.SYMTYPE else io.BytesIO(b"bad"))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    with pytest.raises(DataError, match="refusing unsafe member"):
        verify_and_extract(archive, tmp_path / "out", md5=md5)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "cifar-10-batches-py").exists()


def test_download_fetches_through_the_opener_and_reuses(tmp_path: Path, monkeypatch) -> None:
    archive, md5 = _official_like_archive(tmp_path)
    monkeypatch.setattr("budgetnet.data.download.ARCHIVE_MD5", md5)
    calls = []

    def opener(url: str):
        calls.append(url)
        return io.BytesIO(archive.read_bytes())

    target = download_cifar(tmp_path / "cache", opener=opener)
    assert calls == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert (target / "test_batch").is_file()
    assert download_cifar(tmp_path / "cache", opener=opener) == target and len(calls) == 1


def test_load_without_download_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="--download"):
        load_cifar(tmp_path / "nowhere", cache_dir=tmp_path / "cache")
