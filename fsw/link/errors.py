"""The one error family of the byte transports: every failure is a :class:`LinkError`."""

from __future__ import annotations


class LinkError(Exception):
    """A transport that cannot be opened or used.

    >>> str(LinkError("udp://localhost needs a port"))
    'udp://localhost needs a port'
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class LinkUrlError(LinkError):
    """A link URL that does not name a usable transport."""


class LinkClosedError(LinkError):
    """The transport was closed by its owner; open a new one."""
