"""TM synchronization (CCSDS 131.0-B): ASM framing and the ground's frame synchroniser.

On the way down every fixed-length TM frame is randomized and preceded by the attached
sync marker ``1A CF FC 1D``; together they make a CADU. The :class:`FrameSynchronizer`
finds CADUs in a byte stream that may hold noise, corrupted frames and slips (bytes lost
or inserted): it searches for the ASM, confirms a candidate by its FECF, then stays locked
while ASMs keep arriving one CADU apart (tolerating a few bit errors in the ASM), and falls
back to searching when they stop.

>>> frames = [bytes([0, i]) * 8 for i in range(3)]
>>> stream = b"noise" + attach_asm(frames)
>>> sync = FrameSynchronizer(frame_len=16, has_fecf=False)
>>> sync.feed(stream) == frames
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fsw.ccsds.crc import fecf16, fecf16_function
from fsw.ccsds.errors import FrameError
from fsw.ccsds.randomizer import tm_randomize, tm_sequence_array

ASM = b"\x1a\xcf\xfc\x1d"
ASM_LEN = len(ASM)
_ASM_INT = int.from_bytes(ASM, "big")
_ASM_ARRAY = np.frombuffer(ASM, dtype=np.uint8)
_crc_fun = fecf16_function()


def attach_asm(frames: Sequence[bytes], randomize: bool = True) -> bytes:
    """CADUs for equal-length encoded frames: ASM + (randomized) frame, concatenated.

    >>> attach_asm([bytes(4)]).hex()
    '1acffc1dff480ec0'
    """
    if not frames:
        return b""
    length = len(frames[0])
    if any(len(f) != length for f in frames):
        raise FrameError("attach_asm needs frames of one length")
    rows = np.frombuffer(b"".join(frames), dtype=np.uint8).reshape(len(frames), length)
    out = np.empty((len(frames), ASM_LEN + length), dtype=np.uint8)
    out[:, :ASM_LEN] = _ASM_ARRAY
    if randomize:
        np.bitwise_xor(rows, tm_sequence_array(length), out=out[:, ASM_LEN:])
    else:
        out[:, ASM_LEN:] = rows
    return out.tobytes()


class FrameSynchronizer:
    """Turns a received byte stream into derandomized, FECF-checked TM frames.

    ``frame_len`` is the TM frame length (without ASM). ``asm_tolerance_bits`` is how many
    ASM bits may be wrong while locked. Frames whose FECF fails are dropped and counted;
    with ``has_fecf=False`` lock is taken on the ASM alone.
    """

    __slots__ = (
        "_buf",
        "_cadu",
        "_seq",
        "asm_tolerance_bits",
        "frame_len",
        "has_fecf",
        "locked",
        "randomized",
        "stats",
    )

    def __init__(
        self,
        frame_len: int,
        randomized: bool = True,
        has_fecf: bool = True,
        asm_tolerance_bits: int = 2,
    ) -> None:
        if not 8 <= frame_len <= 2048:
            raise FrameError(f"TM frame length {frame_len} outside 8..2048")
        self.frame_len = frame_len
        self.randomized = randomized
        self.has_fecf = has_fecf
        self.asm_tolerance_bits = asm_tolerance_bits
        self.locked = False
        self._buf = bytearray()
        self._cadu = ASM_LEN + frame_len
        self._seq = tm_sequence_array(frame_len)
        self.stats: dict[str, int] = {
            "frames": 0,
            "fecf_errors": 0,
            "locks": 0,
            "lock_losses": 0,
            "bytes_skipped": 0,
            "asm_bit_errors": 0,
        }

    def reset(self) -> None:
        """Drop buffered bytes and lock (e.g. when the link is re-established)."""
        self._buf.clear()
        self.locked = False

    def _check(self, frame: bytes) -> bool:
        return not self.has_fecf or fecf16(frame) == 0

    def _derandomize(self, raw: bytes | bytearray | memoryview) -> bytes:
        return tm_randomize(raw) if self.randomized else bytes(raw)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Add received bytes; return the good frames now complete, in order."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        cadu = self._cadu
        stats = self.stats
        while True:
            if self.locked:
                rows = (len(buf) - pos) // cadu
                if rows == 0:
                    break
                pos, failed = self._locked_run(pos, rows, out)
                if failed:
                    # A bad frame may hide a slip: search again from just after its ASM,
                    # so the next frame is found wherever it really starts.
                    stats["fecf_errors"] += 1
                    self.locked = False
                    pos += 1
                continue
            found = buf.find(ASM, pos)
            if found < 0:
                skip = max(0, len(buf) - (ASM_LEN - 1) - pos)
                stats["bytes_skipped"] += skip
                pos += skip
                break
            if len(buf) - found < cadu:
                stats["bytes_skipped"] += found - pos
                pos = found
                break
            frame = self._derandomize(buf[found + ASM_LEN : found + cadu])
            if self._check(frame):
                stats["bytes_skipped"] += found - pos
                stats["frames"] += 1
                stats["locks"] += 1
                self.locked = True
                out.append(frame)
                pos = found + cadu
            else:
                stats["bytes_skipped"] += found + 1 - pos
                pos = found + 1
        if pos:
            del buf[:pos]
        return out

    def _locked_run(self, pos: int, rows: int, out: list[bytes]) -> tuple[int, bool]:
        """Locked fast path: check many ASMs and derandomize many frames at once.

        Returns the new position and whether it stopped at a frame whose FECF failed.
        """
        cadu = self._cadu
        flen = self.frame_len
        block = np.frombuffer(self._buf, dtype=np.uint8, count=rows * cadu, offset=pos)
        block = block.reshape(rows, cadu)
        ok = (block[:, :ASM_LEN] == _ASM_ARRAY).all(axis=1)
        bad = np.flatnonzero(~ok)
        good_rows = int(bad[0]) if bad.size else rows
        if good_rows == 0:
            head = bytes(block[0, :ASM_LEN])
            errors = (int.from_bytes(head, "big") ^ _ASM_INT).bit_count()
            if errors > self.asm_tolerance_bits:
                del block
                self.locked = False
                self.stats["lock_losses"] += 1
                return pos, False
            self.stats["asm_bit_errors"] += errors
            good_rows = 1  # a damaged ASM in lock: keep going, the FECF decides
        body = block[:good_rows, ASM_LEN:]
        frames = (body ^ self._seq if self.randomized else body).tobytes()
        del block, body
        stats = self.stats
        check = self.has_fecf
        crc = _crc_fun
        for k in range(good_rows):
            frame = frames[k * flen : (k + 1) * flen]
            if check and crc(frame) != 0:
                stats["frames"] += k
                return pos + k * cadu, True
            out.append(frame)
        stats["frames"] += good_rows
        return pos + good_rows * cadu, False


__all__ = ["ASM", "FrameSynchronizer", "attach_asm"]
