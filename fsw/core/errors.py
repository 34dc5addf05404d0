"""The one error family of the flight core: every core failure is a :class:`CoreError`.

Command failures carry a :class:`FailureCode`, the number that travels to the ground in
PUS service 1 failure reports (1,2), (1,4) and (1,8) together with a human reason.

>>> err = CommandFailed(FailureCode.ARG_OUT_OF_RANGE, "gain=12.0 outside 0..10")
>>> str(err)
'ARG_OUT_OF_RANGE: gain=12.0 outside 0..10'
>>> int(err.code)
6
"""

from __future__ import annotations

from enum import IntEnum


class FailureCode(IntEnum):
    """Service-1 failure codes (the ``failure_code`` field of (1,2), (1,4), (1,8))."""

    ILLEGAL_APID = 1
    BAD_LENGTH = 2
    BAD_CHECKSUM = 3
    MALFORMED = 4
    UNKNOWN_COMMAND = 5
    ARG_OUT_OF_RANGE = 6
    NOT_AUTHORISED = 7
    BUSY = 8
    EXECUTION_ERROR = 9
    VALUE_REJECTED = 10
    NOT_FOUND = 11
    DICTIONARY_MISMATCH = 12


#: What each failure code tells the operator (exported in the dictionary).
FAILURE_MEANINGS: dict[FailureCode, str] = {
    FailureCode.ILLEGAL_APID: "the TC is addressed to an APID this software does not serve",
    FailureCode.BAD_LENGTH: "packet or application data shorter or longer than the command",
    FailureCode.BAD_CHECKSUM: "packet error control (CRC-16) does not match",
    FailureCode.MALFORMED: "not a valid PUS-C TC (version, type, header flag, segmentation)",
    FailureCode.UNKNOWN_COMMAND: "no command with this service/subservice or function id",
    FailureCode.ARG_OUT_OF_RANGE: "an argument is outside its declared range, enum or length",
    FailureCode.NOT_AUTHORISED: "the command is not allowed now (e.g. payload command in SAFE)",
    FailureCode.BUSY: "the target cannot take the command now (table full, already running)",
    FailureCode.EXECUTION_ERROR: "the command started but failed while executing",
    FailureCode.VALUE_REJECTED: "a validator refused the value; the old value is kept",
    FailureCode.NOT_FOUND: "a referenced report, parameter, event, entry or sequence is unknown",
    FailureCode.DICTIONARY_MISMATCH: "a stored or time-tagged TC was checked against another "
    "dictionary than the one flying now (its raw ids may mean something else): not run",
}


class CoreError(Exception):
    """Base of every error raised by ``fsw.core``.

    >>> str(CoreError("component 'eps' is not registered"))
    "component 'eps' is not registered"
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class DeclarationError(CoreError):
    """A component declares something inconsistent (duplicate name, bad range, bad id)."""


class NvStoreError(CoreError):
    """Persistent storage could not be written or read at all."""


class CommandFailed(CoreError):
    """A command is refused or fails; the code and reason go into a service-1 report.

    Raise it from a command handler to fail the command with a clear reason::

        raise CommandFailed(FailureCode.BUSY, "camera capture already running")
    """

    def __init__(self, code: FailureCode, reason: str, *, offset: int | None = None) -> None:
        self.code = code
        self.offset = offset
        super().__init__(reason)

    def __str__(self) -> str:
        where = "" if self.offset is None else f" (at byte {self.offset})"
        return f"{self.code.name}: {self.reason}{where}"


class WireError(CommandFailed):
    """Bytes that do not match a declared layout (wrong length, value out of range)."""


__all__ = [
    "FAILURE_MEANINGS",
    "CommandFailed",
    "CoreError",
    "DeclarationError",
    "FailureCode",
    "NvStoreError",
    "WireError",
]
