"""Wire errors: one exception class per C status (ftte_wire_status), named after it.

The codes and their descriptions come from the C header and ``ftte_wire_status_string``; this
module only gives each one a Python class so that callers can ``except BadCRC``.
"""

from __future__ import annotations

from enum import IntEnum

from ftte.native import ffi, lib

#: ftte_wire_status, from the header: Status.BAD_CRC == lib.FTTE_WIRE_ERR_BAD_CRC.
Status = IntEnum("Status", {
    name.removeprefix("FTTE_WIRE_").removeprefix("ERR_"): value
    for name, value in sorted(ffi.typeof("ftte_wire_status").relements.items(), key=lambda kv: -kv[1])
})


def describe(status: int) -> str:
    """The C codec's description of a status."""
    return ffi.string(lib.ftte_wire_status_string(status)).decode()


class WireError(Exception):
    """A frame or message the codec refused, or an ERROR a peer sent.

    `status` is the Status member (e.g. Status.BAD_CRC); `code` its wire code (-status);
    `context` says what was being done."""

    status: Status = None  # set on each subclass

    def __init__(self, context: str = "", status: int | None = None, detail: int = 0):
        if status is not None:
            self.status = Status(status) if status in Status._value2member_map_ else status
        self.context = context
        self.detail = detail
        name = self.status.name if isinstance(self.status, Status) else f"status {self.status}"
        text = describe(int(self.status)) if self.status is not None else "wire error"
        message = f"{context}: {text} [{name}]" if context else f"{text} [{name}]"
        super().__init__(message)

    @property
    def code(self) -> int:
        """The code an ERROR message carries for this status."""
        return -int(self.status)


class BadArgument(WireError, ValueError):
    status = Status.ARG


class BadCRC(WireError):
    status = Status.BAD_CRC


class BadCOBS(WireError):
    status = Status.BAD_COBS


class FrameTooLarge(WireError):
    status = Status.TOO_LARGE


class TruncatedFrame(WireError):
    status = Status.TRUNCATED


class BadVersion(WireError):
    status = Status.BAD_VERSION


class UnknownMessageType(WireError):
    status = Status.UNKNOWN_TYPE


class BadHeader(WireError):
    status = Status.BAD_HEADER


class BadLength(WireError):
    status = Status.BAD_LENGTH


class BadField(WireError, ValueError):
    status = Status.BAD_FIELD


class OutOfOrder(WireError):
    status = Status.OUT_OF_ORDER


class UnexpectedMessage(WireError):
    status = Status.UNEXPECTED


class ModelMismatch(WireError):
    status = Status.MODEL_MISMATCH


class OutOfMemory(WireError):
    status = Status.NO_MEMORY


class BadHash(WireError):
    status = Status.BAD_HASH


class AuthError(WireError):
    status = Status.AUTH


class Busy(WireError):
    status = Status.BUSY


class StorageError(WireError):
    status = Status.STORAGE


class TrainingError(WireError):
    status = Status.TRAINING


_BY_STATUS: dict[int, type[WireError]] = {
    int(cls.status): cls for cls in WireError.__subclasses__()
}


def error_class(status: int) -> type[WireError]:
    """The exception class of a status (WireError for a status this module does not know)."""
    return _BY_STATUS.get(int(status), WireError)


def wire_error(status: int, context: str = "", detail: int = 0) -> WireError:
    """An exception instance for a negative C status."""
    cls = error_class(status)
    if cls is WireError:
        return WireError(context, status=status, detail=detail)
    return cls(context, detail=detail)


def check(result: int, context: str) -> int:
    """Returns a non-negative C result; raises the status's exception for a negative one."""
    if result < 0:
        raise wire_error(result, context)
    return result
