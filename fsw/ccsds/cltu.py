"""Communications Link Transmission Units (CCSDS 231.0-B): how a TC frame crosses the RF.

Layout::

    EB 90 | codeblock 1 | ... | codeblock n | C5 C5 C5 C5 C5 C5 C5 79
            (8 bytes: 7 information bytes + BCH(63,56) parity + filler bit)

The TC frame is (optionally) XORed with the TC randomizer, cut into 7-byte pieces, the
last piece filled with 0x55, and each piece BCH-encoded. The receiver decodes codeblocks
until the first one it cannot correct, which is normally the tail sequence (built to be
uncorrectable). Each codeblock may carry one flipped bit; it is corrected and counted.

>>> cltu = encode_cltu(bytes.fromhex("2001000700aa0000"), randomize=False)
>>> cltu[:2].hex(), cltu[-8:].hex(), len(cltu)
('eb90', 'c5c5c5c5c5c5c579', 26)
>>> decode_cltu(cltu, randomize=False).hex()
'2001000700aa0000'
"""

from __future__ import annotations

from dataclasses import dataclass

from fsw.ccsds.bch import CODEBLOCK_BYTES, INFO_BYTES, bch_decode_blocks, bch_encode_blocks
from fsw.ccsds.errors import CltuError
from fsw.ccsds.randomizer import tc_randomize

START_SEQUENCE = b"\xeb\x90"
TAIL_SEQUENCE = bytes.fromhex("c5c5c5c5c5c5c579")
FILL_BYTE = 0x55
#: Codeblocks needed by the largest TC frame (1024 bytes): 147; a little headroom.
MAX_CODEBLOCKS = 150
_TC_HEADER_LEN = 5


def _frame_length(data: bytes) -> int | None:
    """Total TC frame length from its primary header, or None if there is no header."""
    if len(data) < _TC_HEADER_LEN:
        return None
    return (((data[2] & 0x03) << 8) | data[3]) + 1


def encode_cltu(frame: bytes | bytearray | memoryview, randomize: bool = True) -> bytes:
    """Wrap one TC transfer frame in a CLTU (start sequence, codeblocks, tail).

    >>> len(encode_cltu(bytes(7)))
    18
    """
    if len(frame) == 0:
        raise CltuError("a CLTU needs at least one byte of frame data")
    data = tc_randomize(frame) if randomize else bytes(frame)
    pad = -len(data) % INFO_BYTES
    if pad:
        data += bytes([FILL_BYTE]) * pad
    return START_SEQUENCE + bch_encode_blocks(data) + TAIL_SEQUENCE


@dataclass(slots=True, frozen=True)
class CltuDecoded:
    """What one CLTU carried.

    ``data`` is the frame, cut to the length its TC header declares when that fits;
    ``bits_corrected`` counts single-bit corrections; ``complete`` is False when decoding
    stopped at an uncorrectable codeblock that was not the tail (the data before it is
    still delivered, as 231.0-B prescribes; the frame checks decide whether it is usable).
    """

    data: bytes
    bits_corrected: int
    codeblocks: int
    complete: bool


def _finish(info: bytes, randomize: bool) -> tuple[bytes, int | None]:
    data = tc_randomize(info) if randomize else info
    length = _frame_length(data)
    if length is not None and length <= len(data):
        return data[:length], length
    return data, length


def decode_cltu_report(cltu: bytes | bytearray | memoryview, randomize: bool = True) -> CltuDecoded:
    """Decode one whole CLTU strictly: start, codeblocks, tail, nothing after.

    Raises :class:`CltuError` on a missing start or tail sequence, an uncorrectable
    codeblock, or frame data shorter than the frame header says.
    """
    raw = bytes(cltu)
    if raw[:2] != START_SEQUENCE:
        raise CltuError("CLTU does not begin with the start sequence EB90", offset=0)
    body = raw[2:]
    if len(body) % CODEBLOCK_BYTES:
        raise CltuError(
            f"CLTU body of {len(body)} bytes is not a whole number of 8-byte codeblocks",
            offset=2,
        )
    n = len(body) // CODEBLOCK_BYTES
    info, corrected, good = bch_decode_blocks(body)
    if good == n:
        raise CltuError("CLTU has no tail sequence", offset=len(raw))
    stop = 2 + good * CODEBLOCK_BYTES
    if raw[stop : stop + CODEBLOCK_BYTES] != TAIL_SEQUENCE:
        raise CltuError(
            f"codeblock {good + 1} has two or more bit errors and cannot be corrected",
            offset=stop,
        )
    if stop + CODEBLOCK_BYTES != len(raw):
        raise CltuError(
            f"{len(raw) - stop - CODEBLOCK_BYTES} bytes after the tail sequence",
            offset=stop + CODEBLOCK_BYTES,
        )
    if good == 0:
        raise CltuError("CLTU carries no codeblocks", offset=2)
    data, length = _finish(info, randomize)
    if length is not None and length > len(data):
        raise CltuError(
            f"CLTU carries {len(data)} bytes but the frame header declares {length}", offset=2
        )
    return CltuDecoded(data=data, bits_corrected=corrected, codeblocks=good, complete=True)


def decode_cltu(cltu: bytes | bytearray | memoryview, randomize: bool = True) -> bytes:
    """The TC frame inside one whole CLTU (see :func:`decode_cltu_report`).

    >>> frame = bytes.fromhex("2001000700aa0000")
    >>> decode_cltu(encode_cltu(frame)) == frame
    True
    """
    return decode_cltu_report(cltu, randomize).data


class CltuExtractor:
    """Finds and decodes CLTUs in an uplink byte stream that arrives in arbitrary pieces.

    Noise between CLTUs (idle sequences, line garbage) is skipped and counted. A CLTU
    split across several :meth:`feed` calls is decoded once its end has arrived. An idle
    sequence of 16 or more 0x55 bytes always ends a stray partial CLTU (an all-0x55
    codeblock is uncorrectable).

    >>> ext = CltuExtractor()
    >>> cltu = encode_cltu(bytes.fromhex("2001000700aa0000"))
    >>> ext.feed(b"\\x55\\x55" + cltu[:9])
    []
    >>> [d.data.hex() for d in ext.feed(cltu[9:])]
    ['2001000700aa0000']
    """

    __slots__ = ("_buf", "randomize", "stats")

    def __init__(self, randomize: bool = True) -> None:
        self.randomize = randomize
        self._buf = bytearray()
        self.stats: dict[str, int] = {
            "cltus": 0,
            "cltus_incomplete": 0,
            "bits_corrected": 0,
            "bytes_skipped": 0,
        }

    def reset(self) -> None:
        """Forget any partial CLTU (e.g. after the link was re-established)."""
        self._buf.clear()

    def feed(self, data: bytes | bytearray | memoryview) -> list[CltuDecoded]:
        """Add received bytes; return every CLTU that is now complete, in order."""
        buf = self._buf
        buf += data
        out: list[CltuDecoded] = []
        pos = 0
        while True:
            start = buf.find(START_SEQUENCE, pos)
            if start < 0:
                keep = 1 if len(buf) > pos and buf[-1] == START_SEQUENCE[0] else 0
                self.stats["bytes_skipped"] += max(0, len(buf) - pos - keep)
                del buf[: len(buf) - keep]
                return out
            self.stats["bytes_skipped"] += start - pos
            first = start + 2
            available = min((len(buf) - first) // CODEBLOCK_BYTES, MAX_CODEBLOCKS + 1)
            info, corrected, good = bch_decode_blocks(
                memoryview(buf)[first : first + available * CODEBLOCK_BYTES]
            )
            if good == available and good <= MAX_CODEBLOCKS:
                del buf[:start]  # wait for the rest of this CLTU
                return out
            stop = first + good * CODEBLOCK_BYTES
            complete = buf[stop : stop + CODEBLOCK_BYTES] == TAIL_SEQUENCE
            # After an uncorrectable block, search again inside what was decoded: a false
            # start sequence in noise must not swallow a real CLTU that follows it.
            pos = stop + CODEBLOCK_BYTES if complete else start + 2
            if good == 0:
                self.stats["bytes_skipped"] += pos - start
                continue
            data, _ = _finish(info, self.randomize)
            self.stats["cltus"] += 1
            self.stats["bits_corrected"] += corrected
            if not complete:
                self.stats["cltus_incomplete"] += 1
            out.append(
                CltuDecoded(data=data, bits_corrected=corrected, codeblocks=good, complete=complete)
            )


__all__ = [
    "FILL_BYTE",
    "START_SEQUENCE",
    "TAIL_SEQUENCE",
    "CltuDecoded",
    "CltuExtractor",
    "decode_cltu",
    "decode_cltu_report",
    "encode_cltu",
]
