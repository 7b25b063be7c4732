"""argparse value parsers whose errors read as one line: counts, rates, durations, epoch lists and ports."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1; thousands separators (',' or '_') are allowed."""
    try:
        value = nonneg_int(text)
    except argparse.ArgumentTypeError:
        value = 0
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def nonneg_int(text: str) -> int:
    """An integer >= 0; thousands separators (',' or '_') are allowed."""
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def nonneg_float(text: str) -> float:
    """A finite float >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (0 <= value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a finite non-negative number, got {text!r}")
    return value


def epoch_list(text: str) -> tuple[int, ...]:
    """Comma-separated positive epochs, e.g. '15,25,35,45'; 'none' or '' for an empty list."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        return tuple(positive_int(part.strip()) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive epochs like 15,25,35,45, got {text!r}") from None


SUFFIXES = {"": 1, "k": 1_000, "m": 1_000_000}
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def count(text: str) -> int:
    """A positive count, plain or with a k/M suffix: 150000, 150_000, 150k, 1M, 1.5M."""
    body = text.strip().replace(",", "").replace("_", "")
    unit = body[-1:].lower() if body[-1:].isalpha() else ""
    try:
        value = float(body[: len(body) - len(unit)]) * SUFFIXES[unit]
    except (KeyError, ValueError):
        value = 0
    if not (value >= 1 and value == int(value)):
        raise argparse.ArgumentTypeError(f"expected a positive count like 150000, 150k or 1M, got {text!r}")
    return int(value)


def duration(text: str) -> float:
    """Seconds from '90', '90s', '30m' or '2h'."""
    body = text.strip().lower()
    unit = body[-1:] if body[-1:].isalpha() else ""
    try:
        seconds = float(body[: len(body) - len(unit)]) * DURATION_UNITS[unit]
    except (KeyError, ValueError):
        seconds = 0
    if not (0 < seconds < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a duration like 90s, 30m or 2h, got {text!r}")
    return seconds


def port_number(text: str) -> int:
    """A TCP port, 1-65535."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return value
