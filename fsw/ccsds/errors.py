"""The one error family of the space link: every decode failure is a :class:`CcsdsError`.

Each error carries a human ``reason`` and, where it applies, the byte ``offset`` in the
input where the problem was found, so an operator reading a log line knows what broke.
Subclasses say which layer complained; catching :class:`CcsdsError` catches them all.
"""

from __future__ import annotations


class CcsdsError(Exception):
    """Bad bytes or a bad state on the space link.

    >>> str(CcsdsError("packet shorter than its header", offset=3))
    'packet shorter than its header (at byte 3)'
    """

    def __init__(self, reason: str, *, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(reason if offset is None else f"{reason} (at byte {offset})")


class PacketError(CcsdsError):
    """A space packet or PUS header that cannot be decoded."""


class CrcError(CcsdsError):
    """A checksum (packet error control, FECF) does not match the data."""


class FrameError(CcsdsError):
    """A TC or TM transfer frame that is malformed, too long, or for someone else."""


class CltuError(CcsdsError):
    """A CLTU without its start or tail sequence, or with an uncorrectable codeblock."""


class CopError(CcsdsError):
    """A COP-1 directive that is not allowed in the current FOP-1/FARM-1 state."""


class SdlsError(CcsdsError):
    """A TC frame that fails Space Data Link Security processing."""


class UnknownSpiError(SdlsError):
    """The frame names a security association (SPI) the receiver does not have."""


class MacError(SdlsError):
    """The message authentication code does not match: forged, corrupted or wrong key."""


class ReplayError(SdlsError):
    """The anti-replay sequence number was already used or is too old for the window."""


class ConfigError(CcsdsError):
    """A link configuration or key file that cannot be used."""


class LinkStateError(CcsdsError):
    """The saved link state (anti-replay numbers, V(R), key ids) cannot be read or saved,
    or an SDLS reset directive is malformed."""
