"""A restricted unpickler for CIFAR batch files: numpy arrays and plain containers, nothing else.

pickle.load runs whatever callable a file names, so an untrusted batch could run code. This
unpickler resolves only the few globals numpy needs to rebuild an array; everything else is
refused before it is looked up, so nothing from the file is ever called.
"""

from __future__ import annotations

import io
import pickle

import numpy as np

from budgetnet.errors import DataError


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """What Python 3 protocol-2 pickles call to rebuild bytes; any codec but latin-1 is refused."""
    if encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused codec {encoding!r}")
    return text.encode("latin1")


def _allowed() -> dict[tuple[str, str], object]:
    # official files (2009) name numpy.core.multiarray; numpy 2 pickles name numpy._core.multiarray
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    allowed: dict[tuple[str, str], object] = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = _reconstruct
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    allowed[("_codecs", "encode")] = _latin1_bytes
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the numpy globals an array needs; any other global raises."""

    allowed = _allowed()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {module}.{name}") from None


def safe_loads(data: bytes, where: str) -> object:
    """Unpickle a CIFAR batch from bytes, refusing any global but numpy's array rebuilders."""
    try:
        # latin1 turns the Python-2 str of the official files into str, bytes-exact for array data
        return _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
    except pickle.UnpicklingError as e:
        raise DataError(f"{where}: not a safe CIFAR batch pickle ({e})") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as e:
        raise DataError(f"{where}: truncated or corrupt pickle ({type(e).__name__}: {e})") from None
