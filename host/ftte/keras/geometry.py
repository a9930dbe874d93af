"""Window geometry of Keras layers in FTTE's terms: padding folded into the next window.

FTTE's layer record stores only the zero rows before the input (pad_top / pad_left); the rows
after are implied by the output size and read as zeros. Keras instead pads explicitly
(ZeroPadding, 'same', 'causal') and may crop (Cropping). An `Axis` records what those layers
did to one spatial axis so that the next convolution or pooling can absorb them, and
`window()` refuses, with the reason, whatever FTTE's record cannot express.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


class GeometryError(ValueError):
    """A padding or window layout FTTE's layer record cannot express."""


@dataclass(frozen=True)
class Axis:
    """One spatial axis: `before` zeros, the first `kept` of `size` real rows, `after` zeros."""

    size: int
    before: int
    kept: int
    after: int

    @staticmethod
    def of(size: int) -> "Axis":
        return Axis(size, 0, size, 0)

    @property
    def length(self) -> int:
        return self.before + self.kept + self.after

    @property
    def plain(self) -> bool:
        return self == Axis.of(self.size)


def padded(axis: Axis, before: int, after: int) -> Axis:
    """The axis after a ZeroPadding layer."""
    return replace(axis, before=axis.before + before, after=axis.after + after)


def cropped(axis: Axis, before: int, after: int) -> Axis:
    """The axis after a Cropping layer; cropping real leading rows cannot be expressed."""
    if before > axis.before:
        raise GeometryError(f"cropping {before} leading rows removes real input rows "
                            "(only the trailing ones can be dropped)")
    zeros = min(after, axis.after)
    kept = axis.kept - (after - zeros)
    if kept <= 0:
        raise GeometryError("cropping removes every input row")
    return replace(axis, before=axis.before - before, kept=kept, after=axis.after - zeros)


@dataclass(frozen=True)
class Window:
    """FTTE geometry along one axis: output size and the zero rows before the input."""

    out: int
    pad: int


def window(axis: Axis, kernel: int, stride: int, padding: str, zeros_allowed: bool = True) -> Window:
    """Geometry of a Keras window (kernel, stride, padding 'valid'/'same'/'causal') applied to
    `axis`, exactly as TensorFlow defines it ('same': pad_total // 2 before). Pooling passes
    zeros_allowed=False: its windows must lie inside the real rows."""
    length = axis.length
    if padding == "valid":
        own, out = 0, (length - kernel) // stride + 1 if length >= kernel else 0
    elif padding == "same":
        out = math.ceil(length / stride)
        own = max((out - 1) * stride + kernel - length, 0) // 2
    elif padding == "causal":
        own, out = kernel - 1, (length - 1) // stride + 1
    else:
        raise GeometryError(f"padding {padding!r} is not supported")
    if out <= 0:
        raise GeometryError(f"window {kernel} is larger than the input ({length})")
    pad = axis.before + own
    last = (out - 1) * stride - pad + kernel - 1  # last real row index a window reads
    if not zeros_allowed and (pad > 0 or last >= axis.kept):
        raise GeometryError("pooling windows would read padding (FTTE pools have none)")
    if axis.kept < axis.size and last >= axis.kept:
        raise GeometryError("a window reads a cropped row, which FTTE would read as real data")
    if pad >= kernel:
        raise GeometryError(f"{pad} padding rows before the input, FTTE needs fewer than the kernel ({kernel})")
    if (out - 1) * stride - pad >= axis.size:
        raise GeometryError("the last window reads only padding")
    return Window(out, pad)
