"""Space Data Link Security (CCSDS 355.0-B) for TC frames: authentication and anti-replay.

A protected frame data field is::

    SPI (2) | sequence field | data (encrypted for AES-GCM) | MAC (mac_len)

The sequence field is the anti-replay sequence number (ARSN, 4 bytes) for HMAC-SHA-256
and AES-CMAC, and the 12-byte IV for AES-GCM (the IV is a counter and doubles as the
ARSN, so a GCM nonce is never reused under one key). The MAC covers the frame header
(passed as ``aad``), the security header and the data. The receiver keeps a sliding
window of the last ``window`` sequence numbers it accepted and refuses repeats and
numbers older than the window.

>>> ground = SecurityAssociation(spi=1, key=bytes(32))
>>> board = SecurityAssociation(spi=1, key=bytes(32))
>>> protected = ground.protect(b"cmd", aad=b"hdr")
>>> protected.hex()[:12]
'000100000001'
>>> board.verify(protected, aad=b"hdr")
b'cmd'
>>> board.verify(protected, aad=b"hdr")
Traceback (most recent call last):
...
fsw.ccsds.errors.ReplayError: sequence number 1 was already accepted (replay)
"""

from __future__ import annotations

import struct
from enum import Enum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import cmac, constant_time, hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from fsw.ccsds.errors import MacError, ReplayError, SdlsError, UnknownSpiError

SPI_LEN = 2
_SPI = struct.Struct(">H")


class MacAlgorithm(Enum):
    """Authentication algorithms a security association can use."""

    HMAC_SHA256 = "hmac-sha256"
    AES_CMAC = "aes-cmac"
    AES_GCM = "aes-gcm"

    @property
    def seq_len(self) -> int:
        """Bytes of the sequence field: 12-byte IV for GCM, 4-byte ARSN otherwise."""
        return 12 if self is MacAlgorithm.AES_GCM else 4


def _parse_algorithm(algorithm: MacAlgorithm | str) -> MacAlgorithm:
    if isinstance(algorithm, MacAlgorithm):
        return algorithm
    try:
        return MacAlgorithm(algorithm.lower())
    except ValueError:
        names = ", ".join(a.value for a in MacAlgorithm)
        raise SdlsError(f"unknown MAC algorithm {algorithm!r} (use one of: {names})") from None


def _check_key(algorithm: MacAlgorithm, key: bytes, mac_len: int) -> None:
    if algorithm is MacAlgorithm.HMAC_SHA256:
        if len(key) < 16:
            raise SdlsError(f"HMAC-SHA-256 key of {len(key)} bytes is too short (16 or more)")
        if not 8 <= mac_len <= 32:
            raise SdlsError(f"HMAC-SHA-256 MAC length {mac_len} outside 8..32 bytes")
    else:
        if len(key) not in (16, 24, 32):
            raise SdlsError(f"AES key of {len(key)} bytes (must be 16, 24 or 32)")
        if algorithm is MacAlgorithm.AES_CMAC and not 8 <= mac_len <= 16:
            raise SdlsError(f"AES-CMAC MAC length {mac_len} outside 8..16 bytes")
        if algorithm is MacAlgorithm.AES_GCM and mac_len != 16:
            raise SdlsError(f"AES-GCM uses a 16-byte tag, not {mac_len}")


class SecurityAssociation:
    """One SDLS security association: a key, an algorithm, and sequence-number state.

    The sending side uses :meth:`protect`; the receiving side :meth:`verify` (or
    :meth:`check` then :meth:`commit`, so that only frames the FARM accepts use up their
    sequence number). Counters in :attr:`stats` feed housekeeping.
    """

    __slots__ = (
        "_aead",
        "_bitmap",
        "_highest",
        "_key",
        "algorithm",
        "arsn",
        "mac_len",
        "spi",
        "stats",
        "window",
    )

    def __init__(
        self,
        spi: int,
        key: bytes,
        algorithm: MacAlgorithm | str = MacAlgorithm.HMAC_SHA256,
        mac_len: int = 16,
        window: int = 64,
        arsn: int = 0,
    ) -> None:
        if not 1 <= spi <= 0xFFFE:
            raise SdlsError(f"SPI {spi} outside 1..65534")
        if not 1 <= window <= 4096:
            raise SdlsError(f"anti-replay window {window} outside 1..4096")
        self.algorithm = _parse_algorithm(algorithm)
        _check_key(self.algorithm, key, mac_len)
        self.spi = spi
        self.mac_len = mac_len
        self.window = window
        self._key = bytes(key)
        self._aead = AESGCM(self._key) if self.algorithm is MacAlgorithm.AES_GCM else None
        self.arsn = arsn  # last sequence number used when sending
        self._highest = arsn  # highest sequence number accepted when receiving
        self._bitmap = 1  # bit i: highest - i already accepted
        self.stats: dict[str, int] = {"protected": 0, "verified": 0, "bad_mac": 0, "replays": 0}

    @property
    def overhead(self) -> int:
        """Bytes SDLS adds to a frame data field (security header plus MAC)."""
        return SPI_LEN + self.algorithm.seq_len + self.mac_len

    @property
    def highest_accepted(self) -> int:
        """The highest sequence number accepted so far (receiving side)."""
        return self._highest

    @property
    def replay_bitmap(self) -> int:
        """Bit ``i`` set: ``highest_accepted - i`` was already accepted (receiving side)."""
        return self._bitmap

    def rekey(self, key: bytes) -> None:
        """Switch to a new key. The sequence numbers carry on: the anti-replay window
        never moves back within an SA, so frames recorded under any earlier key (even one
        rotated back to later) stay refused, and an AES-GCM IV is never reused."""
        _check_key(self.algorithm, key, self.mac_len)
        self._key = bytes(key)
        self._aead = AESGCM(self._key) if self.algorithm is MacAlgorithm.AES_GCM else None

    def restore(self, highest: int, bitmap: int | None = None) -> None:
        """Set the receiving state: ``highest`` accepted, ``bitmap`` as
        :attr:`replay_bitmap` (None: every number at or below ``highest`` counts as
        used, the safe floor after a reset).

        >>> sa = SecurityAssociation(spi=1, key=bytes(32), window=8)
        >>> sa.restore(41)
        >>> sa.state_after(40), sa.state_after(43)
        ((41, 255), (43, 253))
        """
        if not 0 <= highest < 1 << (8 * self.algorithm.seq_len):
            raise SdlsError(f"SA {self.spi}: sequence number {highest} out of range")
        mask = (1 << self.window) - 1
        self._highest = highest
        self._bitmap = (mask if bitmap is None else bitmap & mask) | 1

    def state_after(self, seq: int) -> tuple[int, int]:
        """``(highest accepted, bitmap)`` as they will be once ``seq`` is committed: what
        to save *before* the frame is acted on."""
        mask = (1 << self.window) - 1
        if seq > self._highest:
            return seq, ((self._bitmap << (seq - self._highest)) | 1) & mask
        return self._highest, self._bitmap | (1 << (self._highest - seq))

    def _mac(self, message: bytes) -> bytes:
        if self.algorithm is MacAlgorithm.HMAC_SHA256:
            mac = crypto_hmac.HMAC(self._key, hashes.SHA256())
            mac.update(message)
            return mac.finalize()[: self.mac_len]
        cipher_mac = cmac.CMAC(algorithms.AES(self._key))
        cipher_mac.update(message)
        return cipher_mac.finalize()[: self.mac_len]

    def protect(self, data: bytes, aad: bytes = b"") -> bytes:
        """Security header + data (encrypted for GCM) + MAC, with the next sequence number."""
        seq_len = self.algorithm.seq_len
        if self.arsn + 1 >= 1 << (8 * seq_len):
            raise SdlsError(f"SA {self.spi}: sequence numbers exhausted; rotate the key")
        self.arsn += 1
        header = _SPI.pack(self.spi) + self.arsn.to_bytes(seq_len, "big")
        self.stats["protected"] += 1
        if self._aead is not None:
            return header + self._aead.encrypt(header[SPI_LEN:], data, aad + header)
        return header + data + self._mac(aad + header + data)

    def check(
        self, protected: bytes | bytearray | memoryview, aad: bytes = b""
    ) -> tuple[bytes, int]:
        """Authenticate and replay-check without using up the sequence number.

        Returns ``(data, sequence number)``; raises :class:`UnknownSpiError`,
        :class:`MacError` or :class:`ReplayError`.
        """
        data, seq = self.authenticate(protected, aad)
        self._check_replay(seq)
        return data, seq

    def authenticate(
        self, protected: bytes | bytearray | memoryview, aad: bytes = b""
    ) -> tuple[bytes, int]:
        """Check the SPI and the MAC only (no anti-replay check): ``(data, sequence
        number)``. For messages whose freshness is proven otherwise (a challenge)."""
        raw = bytes(protected)
        seq_len = self.algorithm.seq_len
        if len(raw) < SPI_LEN + seq_len + self.mac_len:
            raise MacError(
                f"{len(raw)} bytes cannot hold a security header and a {self.mac_len}-byte MAC",
                offset=0,
            )
        (spi,) = _SPI.unpack_from(raw, 0)
        if spi != self.spi:
            raise UnknownSpiError(f"frame names SPI {spi}, this association is SPI {self.spi}")
        hdr_len = SPI_LEN + seq_len
        header = raw[:hdr_len]
        seq = int.from_bytes(raw[SPI_LEN:hdr_len], "big")
        if self._aead is not None:
            try:
                data = self._aead.decrypt(raw[SPI_LEN:hdr_len], raw[hdr_len:], aad + header)
            except InvalidTag:
                self.stats["bad_mac"] += 1
                raise MacError(f"SA {self.spi}: AES-GCM tag does not match") from None
        else:
            data = raw[hdr_len : len(raw) - self.mac_len]
            mac = raw[len(raw) - self.mac_len :]
            if not constant_time.bytes_eq(mac, self._mac(aad + header + data)):
                self.stats["bad_mac"] += 1
                raise MacError(
                    f"SA {self.spi}: MAC does not match (forged, corrupted or wrong key)"
                )
        return data, seq

    def _check_replay(self, seq: int) -> None:
        if seq > self._highest:
            return
        age = self._highest - seq
        if age >= self.window:
            self.stats["replays"] += 1
            raise ReplayError(
                f"sequence number {seq} is older than the window "
                f"({self.window} below {self._highest})"
            )
        if (self._bitmap >> age) & 1:
            self.stats["replays"] += 1
            raise ReplayError(f"sequence number {seq} was already accepted (replay)")

    def commit(self, seq: int) -> None:
        """Mark ``seq`` as used (after the frame was accepted)."""
        self._highest, self._bitmap = self.state_after(seq)
        self.stats["verified"] += 1

    def verify(self, protected: bytes | bytearray | memoryview, aad: bytes = b"") -> bytes:
        """Authenticate, replay-check and accept: the data, or an :class:`SdlsError`."""
        data, seq = self.check(protected, aad)
        self.commit(seq)
        return data


def peek_spi(protected: bytes | bytearray | memoryview) -> int:
    """The SPI a protected frame data field names.

    >>> peek_spi(b"\\x00\\x07rest")
    7
    """
    if len(protected) < SPI_LEN:
        raise UnknownSpiError("frame data field too short to name an SPI", offset=0)
    return int(_SPI.unpack_from(bytes(protected[:SPI_LEN]), 0)[0])


__all__ = ["MacAlgorithm", "SecurityAssociation", "peek_spi"]
