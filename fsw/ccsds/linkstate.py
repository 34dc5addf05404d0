"""The spacecraft link's receive state, kept across reboots, and the SDLS reset directive.

What a reboot must not forget (:class:`LinkState`): FARM-1's V(R) and, per security
association, the key it uses now (after rotations) and its anti-replay state (the highest
sequence number accepted and the window bitmap). :class:`~fsw.ccsds.stack.SpacecraftLink`
saves it through a :class:`StateStore` *before* it hands a frame's packets on, so a reset
at any instant can lose at most the frame being saved, never roll the state back.

The record is versioned JSON (``"version": 1``); a later format adds fields and bumps
the version, and :meth:`LinkState.decode` refuses versions it does not know rather than
guess.

>>> st = LinkState(farm_vr=7, sas=(SaState(spi=1, key_id=2, highest=41, bitmap=0b101),))
>>> LinkState.decode(st.encode()) == st
True
>>> LinkState.decode(b'{"version": 9}')
Traceback (most recent call last):
...
fsw.ccsds.errors.LinkStateError: link state has format version 9; this software reads version 1

The SDLS reset (:class:`SaReset`) is how the ground restores a lost state: a bypass frame
under the recovery key that names, per SA, the key to use and the floor at or below which
every sequence number counts as used. Its freshness is a challenge the spacecraft draws
at random at each boot and after each reset (telemetry ``comms.sdls_challenge_hi/_lo``),
so a recorded reset can never be replayed.

>>> r = SaReset(challenge=bytes(8), entries=((1, 2, 1000),), farm_vr=9)
>>> SaReset.decode(r.encode()) == r
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from fsw.ccsds.errors import LinkStateError

STATE_VERSION = 1
RESET_MAGIC = b"GNRS"
RESET_VERSION = 1
CHALLENGE_LEN = 8
_FLOOR_LEN = 12  # an AES-GCM IV is 12 bytes: every SA's sequence numbers fit


@dataclass(slots=True, frozen=True)
class SaState:
    """One SA's receive state: its key id, the highest sequence number accepted, and the
    window bitmap (bit ``i``: ``highest - i`` already accepted). The bitmap is recorded
    as it was; a boot counts every number up to ``highest`` as used."""

    spi: int
    key_id: int
    highest: int
    bitmap: int = 1


@dataclass(slots=True, frozen=True)
class LinkState:
    """What the spacecraft link must remember across a reboot."""

    farm_vr: int
    sas: tuple[SaState, ...] = ()

    def sa(self, spi: int) -> SaState | None:
        """The saved state of SA ``spi`` (None: not in the record)."""
        return next((s for s in self.sas if s.spi == spi), None)

    def encode(self) -> bytes:
        """Versioned JSON bytes."""
        doc = {
            "version": STATE_VERSION,
            "farm_vr": self.farm_vr,
            "sas": [
                {"spi": s.spi, "key_id": s.key_id, "highest": s.highest, "bitmap": f"{s.bitmap:x}"}
                for s in self.sas
            ],
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("ascii")

    @classmethod
    def decode(cls, raw: bytes) -> LinkState:
        """The state in ``raw``; :class:`LinkStateError` says why it is unusable."""
        try:
            doc = json.loads(raw.decode("ascii"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise LinkStateError(f"link state is not readable JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise LinkStateError("link state is not a JSON object")
        version = doc.get("version")
        if version != STATE_VERSION:
            raise LinkStateError(
                f"link state has format version {version}; this software reads version "
                f"{STATE_VERSION}"
            )
        try:
            state = cls(
                farm_vr=_int(doc, "farm_vr", 0xFF),
                sas=tuple(
                    SaState(
                        spi=_int(s, "spi", 0xFFFF),
                        key_id=_int(s, "key_id", 0xFFFF),
                        highest=_int(s, "highest", (1 << 96) - 1),
                        bitmap=int(str(s["bitmap"]), 16),
                    )
                    for s in doc["sas"]
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LinkStateError(f"link state is malformed ({type(exc).__name__}: {exc})") from None
        if len({s.spi for s in state.sas}) != len(state.sas):
            raise LinkStateError("link state lists an SPI twice")
        return state


def _int(doc: Any, key: str, hi: int) -> int:
    value = doc[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= hi:
        raise ValueError(f"{key} = {value!r} is not an integer within 0..{hi}")
    return value


# --- where it is kept ----------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class StoredState:
    """What :meth:`StateStore.load` found: the newest good copy's bytes (None: none),
    whether any copy existed at all, and what was wrong, in words."""

    payload: bytes | None
    existed: bool
    problems: tuple[str, ...] = ()


class StateStore(Protocol):
    """Where the link keeps its state. ``durable`` is False for memory that a reboot
    clears (SITL, tests): then there is nothing to lose and a missing state is normal."""

    @property
    def durable(self) -> bool: ...

    def load(self) -> StoredState:
        """The newest good copy; never raises for bad content."""
        ...

    def save(self, payload: bytes) -> None:
        """Make ``payload`` durable before returning; :class:`LinkStateError` if it cannot."""
        ...


class MemoryStateStore:
    """A :class:`StateStore` in memory (not durable): for tests and the doctests.

    >>> store = MemoryStateStore()
    >>> store.load().existed
    False
    >>> store.save(b"x"); store.load().payload
    b'x'
    """

    durable = False

    def __init__(self) -> None:
        self.payload: bytes | None = None

    def load(self) -> StoredState:
        return StoredState(self.payload, self.payload is not None)

    def save(self, payload: bytes) -> None:
        self.payload = bytes(payload)


class StateStatus(Enum):
    """What the link found at boot, and so what it accepts."""

    VOLATILE = "kept in memory only: a restart forgets it"
    FRESH = "nothing saved yet (memory store): starting from the key file"
    RESTORED = "restored"
    RECOVERED = "restored from the good copy; a damaged copy was rewritten"
    MISSING = "no saved link state in storage (never provisioned, or wiped)"
    CORRUPT = "no usable copy of the saved link state"

    @property
    def lost(self) -> bool:
        """True when the anti-replay state is unknown: authenticated TCs are refused."""
        return self in (StateStatus.MISSING, StateStatus.CORRUPT)


@dataclass(slots=True, frozen=True)
class StateReport:
    """The boot-time verdict on the saved link state, for the ``comms`` events."""

    status: StateStatus
    detail: str = ""


# --- the SDLS reset directive ----------------------------------------------------------


@dataclass(slots=True, frozen=True)
class SaReset:
    """An SDLS reset, sent under the recovery key in a bypass frame.

    ``entries``: ``(spi, key_id, floor)`` per SA: use key ``key_id`` and count every
    sequence number at or below ``floor`` as used. ``farm_vr``: FARM-1's new V(R)
    (None: leave it). ``challenge``: the spacecraft's current challenge.
    """

    challenge: bytes
    entries: tuple[tuple[int, int, int], ...]
    farm_vr: int | None = None

    def encode(self) -> bytes:
        """``GNRS | version | challenge(8) | has V(R) | V(R) | n | n x (spi, key id,
        floor(12))``, big-endian."""
        if len(self.challenge) != CHALLENGE_LEN:
            raise LinkStateError(f"a challenge is {CHALLENGE_LEN} bytes, not {len(self.challenge)}")
        if not 1 <= len(self.entries) <= 255:
            raise LinkStateError("an SDLS reset names 1..255 security associations")
        out = bytearray(RESET_MAGIC)
        out.append(RESET_VERSION)
        out += self.challenge
        out += bytes((self.farm_vr is not None, self.farm_vr or 0, len(self.entries)))
        for spi, key_id, floor in self.entries:
            if not (0 <= spi <= 0xFFFF and 0 <= key_id <= 0xFFFF and 0 <= floor < 1 << 96):
                raise LinkStateError(f"SDLS reset entry {(spi, key_id, floor)} out of range")
            out += spi.to_bytes(2, "big") + key_id.to_bytes(2, "big")
            out += floor.to_bytes(_FLOOR_LEN, "big")
        return bytes(out)

    @classmethod
    def decode(cls, raw: bytes) -> SaReset:
        """The directive in ``raw``; :class:`LinkStateError` if it is not one."""
        head = len(RESET_MAGIC) + 1 + CHALLENGE_LEN + 3
        if len(raw) < head or raw[:4] != RESET_MAGIC:
            raise LinkStateError("not an SDLS reset directive")
        if raw[4] != RESET_VERSION:
            raise LinkStateError(f"SDLS reset version {raw[4]}, expected {RESET_VERSION}")
        challenge = raw[5 : 5 + CHALLENGE_LEN]
        has_vr, vr, count = raw[head - 3 : head]
        entry_len = 4 + _FLOOR_LEN
        if count == 0 or len(raw) != head + count * entry_len:
            raise LinkStateError("SDLS reset directive has the wrong length")
        entries = []
        for i in range(count):
            e = raw[head + i * entry_len : head + (i + 1) * entry_len]
            entries.append(
                (
                    int.from_bytes(e[0:2], "big"),
                    int.from_bytes(e[2:4], "big"),
                    int.from_bytes(e[4:], "big"),
                )
            )
        return cls(bytes(challenge), tuple(entries), vr if has_vr else None)


__all__ = [
    "CHALLENGE_LEN",
    "STATE_VERSION",
    "LinkState",
    "MemoryStateStore",
    "SaReset",
    "SaState",
    "StateReport",
    "StateStatus",
    "StateStore",
    "StoredState",
]
