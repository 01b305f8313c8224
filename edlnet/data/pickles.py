"""Unpickling the CIFAR batch files without letting a pickle run arbitrary code."""

from __future__ import annotations

import io
import pickle
from typing import Any

from .errors import DatasetError

# Everything a dict of numpy arrays, lists, strings and ints needs, and nothing else: a
# pickle naming any other global (os.system, ...) is refused instead of executed.
_ALLOWED = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("builtins", "bytes"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # The official files were written by numpy 1 (numpy.core.*); numpy 2 renamed the
        # module to numpy._core and warns on the old name.
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core") :]
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def load_pickle(data: bytes, name: str) -> dict:
    """Unpickle a CIFAR-style file (Python 2 or 3 pickle of a dict) into a dict.

    Python 2 strings come back as ``bytes`` (``encoding="bytes"``, as the official CIFAR page
    prescribes), so keys may be ``bytes`` or ``str``; use :func:`get_key` to look them up.

    Raises:
        DatasetError: naming ``name`` if the bytes are not such a pickle.
    """
    try:
        obj = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:  # a corrupt pickle can raise almost anything
        raise DatasetError(f"{name} is not a CIFAR pickle: {error}") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{name} is not a CIFAR pickle: expected a dict, got {type(obj).__name__}")
    return obj


def get_key(d: dict, key: str, name: str) -> Any:
    """``d[key]`` whether the pickle stored the key as ``bytes`` or ``str``."""
    for candidate in (key.encode(), key):
        if candidate in d:
            return d[candidate]
    found = ", ".join(repr(k) for k in d)
    raise DatasetError(f"{name} has no {key!r} entry (found {found})")
