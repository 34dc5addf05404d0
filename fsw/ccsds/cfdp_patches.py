"""The patches Gnomon applies to cfdp-py 0.7.0 and spacepackets 0.32.0, all in one place.

Gnomon does not write CFDP itself: :mod:`fsw.ccsds.cfdp` drives cfdp-py's handlers. Four
things in the pinned library versions need a patch (docs/ccsds.md, "CFDP"); each is a few
lines, applied once by :func:`apply` (idempotent; :mod:`fsw.ccsds.cfdp` calls it), and
``tests/test_cfdp_patches.py`` fails when the library's behaviour changes, so each patch
is revisited on an upgrade:

1. **The clock.** cfdp-py builds its positive-ACK and NAK timers inside the handlers with
   ``spacepackets.countdown.Countdown``, which reads ``time.time()``; there is no clock
   parameter. The patch binds :class:`ContactCountdown` (same API, reads the contact time
   the entity is being stepped at, :func:`stepping_at`) as ``Countdown`` in both handler
   modules. A transfer's timers then run only while the entity is stepped (in contact):
   an LOS freezes them, and the transfer resumes at the next AOS.
2. **Shared lost-segment tracker.** ``_AckedModeParams.lost_seg_tracker`` has a mutable
   default (``field(default=LostSegmentTracker())``): one tracker shared by every
   destination handler in the process. The patch gives each destination transaction its
   own.
3. **EOF condition code.** spacepackets 0.32.0's ``EofPdu.unpack`` keeps the condition
   code unshifted (``byte & 0xF0``: 240 for CANCEL_REQUEST_RECEIVED), and the receiver
   then crashes packing its answer to any EOF(cancel). The patch shifts it back.
4. **Class 2 never checks the file checksum when nothing was lost.** In acknowledged mode
   an EOF that finds no gap goes straight to completion (``_eof_ack_pdu_done``) with
   ``NO_ERROR``/``DATA_COMPLETE``; the checksum is verified only after a NAK repair (and
   in class 1). A corrupted segment would be delivered as good. The patch verifies the
   checksum on that path too, and a mismatch ends the transaction with
   ``FILE_CHECKSUM_FAILURE``/``DATA_INCOMPLETE``, as the repaired path does.

Nothing here changes a byte on the wire.

>>> apply()
>>> from datetime import timedelta
>>> with stepping_at(100.0):
...     c = ContactCountdown(timedelta(seconds=3))
>>> with stepping_at(102.0):
...     c.timed_out()
False
>>> with stepping_at(103.0):
...     c.timed_out()
True
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import cfdppy.handler.dest as _dest
import cfdppy.handler.source as _source
from cfdppy.handler.dest import CompletionDisposition
from cfdppy.handler.dest import TransactionStep as DestStep
from spacepackets.cfdp import ConditionCode, DeliveryCode
from spacepackets.cfdp.pdu import EofPdu
from spacepackets.countdown import Countdown

#: The versions these patches were written against (checked by the tests).
CFDP_PY_VERSION = "0.7.0"
SPACEPACKETS_VERSION = "0.32.0"

#: Contact time (seconds) of the entity being stepped now; None outside any stepping.
_NOW_S: contextvars.ContextVar[float | None] = contextvars.ContextVar("cfdp_now_s", default=None)


def _now_ms() -> int:
    now = _NOW_S.get()
    return 0 if now is None else round(now * 1000.0)


@contextlib.contextmanager
def stepping_at(now_s: float) -> Iterator[None]:
    """Run the block with every CFDP timer reading ``now_s`` (contact seconds)."""
    token = _NOW_S.set(now_s)
    try:
        yield
    finally:
        _NOW_S.reset(token)


class ContactCountdown(Countdown):
    """``spacepackets.countdown.Countdown`` on the entity's contact clock (patch 1)."""

    def __init__(self, init_timeout: timedelta | None) -> None:
        if init_timeout is None:
            self._timeout_ms = 0
            self._start_time_ms = 0
        else:
            self._timeout_ms = int(init_timeout / timedelta(milliseconds=1))
            self._start_time_ms = _now_ms()

    def timed_out(self) -> bool:
        return _now_ms() - self._start_time_ms >= self._timeout_ms

    def start(self) -> None:
        self._start_time_ms = _now_ms()

    def remaining_time(self) -> timedelta:
        left = self._start_time_ms + self._timeout_ms - _now_ms()
        return timedelta(milliseconds=max(0, left))


#: The library's own functions, kept so the tests can show the bugs are still there.
ORIGINAL_DEST_FIELDS_INIT: Callable[..., None] = _dest._DestFieldWrapper.__init__
ORIGINAL_EOF_UNPACK: Callable[..., EofPdu] = EofPdu.unpack.__func__
ORIGINAL_EOF_ACK_DONE: Callable[..., None] = _dest.DestHandler._eof_ack_pdu_done


def _dest_fields_init(self: Any) -> None:
    ORIGINAL_DEST_FIELDS_INIT(self)
    self.acked_params.lost_seg_tracker = _dest.LostSegmentTracker()  # patch 2


def _eof_unpack(cls: type[EofPdu], data: bytes | bytearray) -> EofPdu:
    pdu = ORIGINAL_EOF_UNPACK(cls, data)
    code = int(pdu.condition_code)
    if code > 0x0F:  # patch 3: the nibble was left in the high half of the byte
        pdu.condition_code = ConditionCode(code >> 4)
    return pdu


def _eof_ack_pdu_done(self: Any) -> None:
    params = self._params
    gapless = (
        params.completion_disposition != CompletionDisposition.CANCELED
        and params.acked_params.lost_seg_tracker.num_lost_segments == 0
        and not params.acked_params.metadata_missing
    )
    ORIGINAL_EOF_ACK_DONE(self)
    finished = params.finished_params
    if (
        gapless
        and self.states.step == DestStep.TRANSFER_COMPLETION
        and params.fp.crc32 is not None
        and finished.condition_code == ConditionCode.NO_ERROR
        and not self._checksum_verify(params.fp.progress, params.fp.crc32)  # patch 4
    ):
        finished.delivery_code = DeliveryCode.DATA_INCOMPLETE
        finished.condition_code = ConditionCode.FILE_CHECKSUM_FAILURE


def apply() -> None:
    """Apply the four patches (idempotent)."""
    _source.Countdown = ContactCountdown
    _dest.Countdown = ContactCountdown
    _dest._DestFieldWrapper.__init__ = _dest_fields_init
    EofPdu.unpack = classmethod(_eof_unpack)
    _dest.DestHandler._eof_ack_pdu_done = _eof_ack_pdu_done


__all__ = [
    "CFDP_PY_VERSION",
    "ORIGINAL_DEST_FIELDS_INIT",
    "ORIGINAL_EOF_ACK_DONE",
    "ORIGINAL_EOF_UNPACK",
    "SPACEPACKETS_VERSION",
    "ContactCountdown",
    "apply",
    "stepping_at",
]
