"""Archives and dataset folders: only the files a layout uses are read, each member's declared size is
checked against what it can be before reading, the total is bounded, and a FIFO never hangs."""

from __future__ import annotations

import gzip
import io
import os
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest
from data_fixtures import folder_members, tree_members, write_binary, write_tar, write_zip
from hostile import fails_in_one_line, no_hang, tiny  # noqa: F401  (tiny is a fixture)

import budgetnet.data.tree as tree
from budgetnet.cli.main import USAGE_ERROR
from budgetnet.data import load_cifar
from budgetnet.data.tree import open_tree

GIB2 = 2 << 30


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGETNET_CACHE", str(tmp_path / "cache"))


def zip_declaring(path: Path, members: dict[str, bytes], name: str, declared: int) -> Path:
    """A stored (uncompressed) zip whose central directory says member `name` holds `declared` bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"PK\x01\x02")  # the first central directory entry
    while True:
        length = struct.unpack_from("<H", raw, at + 28)[0]
        if raw[at + 46 : at + 46 + length].decode() == name:
            struct.pack_into("<I", raw, at + 24, declared)  # uncompressed size
            break
        at = raw.index(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(raw))
    return path


def targz_declaring(path: Path, members: dict[str, bytes], name: str, declared: int) -> Path:
    """A .tar.gz whose header says member `name` holds `declared` bytes (it is placed first)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for member, data in sorted(members.items(), key=lambda item: item[0] != name):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    raw = bytearray(buffer.getvalue())  # the first 512 bytes are `name`'s header
    raw[124:136] = f"{declared:011o}\0".encode()
    raw[148:156] = b" " * 8
    raw[148:156] = f"{sum(raw[:512]):06o}\0 ".encode()
    path.write_bytes(gzip.compress(bytes(raw)))
    return path


def binary_members(tmp_path: Path) -> dict[str, bytes]:
    return tree_members(write_binary(tmp_path / "src"))


@pytest.mark.parametrize("container", ["zip", "tar.gz"])
def test_a_member_declaring_2_gib_is_refused_unread(container: str, tmp_path: Path, capsys) -> None:
    members = binary_members(tmp_path)
    name = "cifar-10-batches-bin/data_batch_1.bin"
    path = tmp_path / f"cifar.{container}"
    (zip_declaring if container == "zip" else targz_declaring)(path, members, name, GIB2)
    err = fails_in_one_line(capsys, ["data", "info", path], USAGE_ERROR, "declares 2,147,483,648 bytes")
    assert name in err and "refused unread" in err


def test_an_image_member_declaring_more_than_an_image_can_be(tmp_path: Path, capsys) -> None:
    members = folder_members()
    name = next(n for n in members if n.startswith("train/"))
    path = zip_declaring(tmp_path / "images.zip", members, name, 100 << 20)
    fails_in_one_line(capsys, ["data", "info", path], USAGE_ERROR, "more than such a file can be")


@pytest.mark.parametrize("container", ["zip", "tar.gz"])
def test_only_the_members_a_layout_uses_are_read(container: str, tmp_path: Path) -> None:
    members = {**binary_members(tmp_path), "cifar-10-batches-bin/readme.html": b"<html>",
               "extras/video.mp4": os.urandom(1 << 20)}
    path = (write_zip if container == "zip" else write_tar)(tmp_path / f"cifar.{container}", members)
    opened = open_tree(path)
    assert sorted(opened.members) == sorted(n for n in members if "readme" not in n and "extras" not in n)
    assert len(load_cifar(path).train_images) == 20


def test_the_total_read_from_an_archive_is_bounded(tmp_path: Path, monkeypatch, capsys) -> None:
    path = write_tar(tmp_path / "cifar.tar.gz", binary_members(tmp_path))
    monkeypatch.setattr(tree, "MAX_TOTAL_BYTES", 50_000)  # the 20-image set holds about 80 kB
    fails_in_one_line(capsys, ["data", "info", path], USAGE_ERROR, "more than 50,000 bytes in all")


def test_an_oversized_batch_in_a_folder_is_refused_unread(tmp_path: Path, capsys) -> None:
    folder = write_binary(tmp_path)
    with open(folder / "data_batch_3.bin", "r+b") as f:
        f.truncate(tree.MAX_BATCH_BYTES + 1)  # sparse: costs no disk
    fails_in_one_line(capsys, ["data", "info", folder], USAGE_ERROR, "refused unread")


@pytest.mark.parametrize("name", ["cifar.zip", "cifar.tar.gz"])
def test_a_fifo_named_like_an_archive_never_hangs(name: str, tiny: dict, capsys) -> None:
    fifo = tiny["tmp"] / name
    os.mkfifo(fifo)
    with no_hang():
        fails_in_one_line(capsys, ["data", "info", fifo], USAGE_ERROR, "not a directory or a regular file")
        fails_in_one_line(capsys, ["train", "--arch", tiny["spec"], "--data", fifo, "--out", tiny["tmp"] / "run"],
                          USAGE_ERROR, "not a directory or a regular file")
    assert not (tiny["tmp"] / "run").exists()
