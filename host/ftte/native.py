"""The one door to the C kernels: the cffi extension, status checking, and C's constants.

Everything here is read from the C headers through the compiled extension; nothing is
re-declared in Python.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ftte._native import ffi, lib

__all__ = ["ffi", "lib", "FtteError", "check", "op_names", "op_id", "float_buffer"]


class FtteError(RuntimeError):
    """A C kernel returned an error status; `status` is its name, e.g. FTTE_ERR_ARENA."""

    def __init__(self, status: int, context: str):
        self.code = status
        self.status = ffi.string(ffi.cast("ftte_status", status))
        super().__init__(f"{context}: {self.status} ({_STATUS_HELP.get(self.status, 'error')})")


_STATUS_HELP = {
    "FTTE_ERR_ARG": "invalid argument: NULL pointer, bad batch size or slice",
    "FTTE_ERR_SHAPE": "layer geometry inconsistent",
    "FTTE_ERR_ARENA": "arena smaller than the plan needs",
    "FTTE_ERR_UNSUPPORTED": "operator or option not supported",
    "FTTE_ERR_SPEC": "update spec invalid for the layer",
    "FTTE_ERR_MODEL": "layer table inconsistent",
    "FTTE_ERR_LABEL": "class label out of range",
}


def check(status: int, context: str) -> None:
    """Raises FtteError unless `status` is FTTE_OK."""
    if status != lib.FTTE_OK:
        raise FtteError(status, context)


@cache
def op_names() -> dict[int, str]:
    """C operator ids to names: FTTE_OP_MAX_POOL2D -> 'max_pool2d'."""
    return {getattr(lib, n): n[len("FTTE_OP_"):].lower() for n in dir(lib) if n.startswith("FTTE_OP_")}


def op_id(name: str) -> int:
    """The C operator id of a name such as 'conv2d'."""
    ids = {v: k for k, v in op_names().items()}
    if name not in ids:
        raise ValueError(f"unknown operator {name!r}; known: {', '.join(sorted(ids))}")
    return ids[name]


def float_buffer(array: np.ndarray, what: str):
    """A zero-copy `float *` over a C-contiguous float32 array."""
    if array.dtype != np.float32 or not array.flags.c_contiguous:
        raise TypeError(f"{what} must be a C-contiguous float32 array, got {array.dtype}")
    return ffi.from_buffer("float[]", array)
