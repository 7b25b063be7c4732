"""Output paths checked before any work, so a bad --out costs one line, not minutes of work and a traceback."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from budgetnet.errors import BudgetnetError


def image_formats() -> tuple[str, ...]:
    """The file suffixes matplotlib can write a figure as (png, pdf, svg, ...), without the dot."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(sorted(FigureCanvasBase.get_supported_filetypes()))


def _check_parents(path: Path) -> None:
    """Refuse a path under an existing file, and a missing or read-only folder it would be written into."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise BudgetnetError(f"{path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise BudgetnetError(f"{path}: cannot write into {parent} (permission denied)")
            return


def check_file_out(path: str | Path, formats: Collection[str] | None = None) -> Path:
    """Refuse an output file path that is a directory or special file, lies under a file, or whose suffix is
    not one of `formats` (suffixes without the dot; None accepts any)."""
    path = Path(path)
    _check_parents(path)
    if path.is_dir():
        raise BudgetnetError(f"{path} is a directory; --out names the file to write")
    if path.exists() and not path.is_file():
        raise BudgetnetError(f"{path} exists and is not a regular file; refusing to replace it")
    if formats is not None and path.suffix.lower().lstrip(".") not in formats:
        raise BudgetnetError(f"{path}: unknown image format {path.suffix or '(no suffix)'!r}; "
                             f"use one of {', '.join('.' + f for f in formats)}")
    return path


def check_image_out(path: str | Path) -> Path:
    """check_file_out for a figure: its suffix must be a format matplotlib writes."""
    return check_file_out(path, image_formats())


def check_dir_out(path: str | Path) -> Path:
    """Refuse an output directory path that is an existing file or lies under one."""
    path = Path(path)
    _check_parents(path)
    if path.exists() and not path.is_dir():
        raise BudgetnetError(f"{path} is a file, not a directory; --out names a directory here")
    return path
