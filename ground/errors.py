"""The one error family of the ground segment: everything it raises is a :class:`GroundError`.

Messages are sentences for an operator: they say what was wrong and, where it helps,
what to do about it.

>>> str(CommandValidationError("PARAM_SET", "value 1200 above max 1000 (units W)"))
'PARAM_SET: value 1200 above max 1000 (units W)'
>>> isinstance(AwaitTimeout("no PONG within 5 s"), AssertionError)
True
"""

from __future__ import annotations


class GroundError(Exception):
    """Base of every error raised by :mod:`ground`."""


class DictionaryError(GroundError):
    """The dictionary file is missing, unreadable, or not a Gnomon dictionary it supports."""


class CommandValidationError(GroundError):
    """A command refused on the ground, before anything was sent.

    ``command`` is the name typed (or None when the name itself is wrong), ``reason``
    says what is wrong with it.
    """

    def __init__(self, command: str | None, reason: str) -> None:
        self.command = command
        self.reason = reason
        super().__init__(f"{command}: {reason}" if command else reason)


class DecodeError(GroundError):
    """Packet bytes that do not match the dictionary layout (with the byte offset)."""

    def __init__(self, reason: str, *, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(reason if offset is None else f"{reason} (at byte {offset})")


class ArchiveError(GroundError):
    """The archive cannot be opened, written or queried."""


class StationError(GroundError):
    """The ground station cannot reach or use its link."""


class AwaitTimeout(GroundError, AssertionError):
    """A test-API wait ran out of time; the message lists what was seen instead.

    It is an ``AssertionError`` too, so pytest reports it as a test failure.
    """


class CommandFailedError(GroundError, AssertionError):
    """A command awaited with the test API failed or timed out on its way to a stage."""


__all__ = [
    "ArchiveError",
    "AwaitTimeout",
    "CommandFailedError",
    "CommandValidationError",
    "DecodeError",
    "DictionaryError",
    "GroundError",
    "StationError",
]
