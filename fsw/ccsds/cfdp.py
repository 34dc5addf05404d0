"""A CFDP (CCSDS 727.0-B) entity, driven by cfdp-py: file transfers in space packets.

Gnomon does not write CFDP itself. cfdp-py's ``SourceHandler`` and ``DestHandler`` run one
transaction each; :class:`CfdpEntity` is the glue a flight or a ground needs around them,
the same on both ends:

- **Routing.** One PDU travels in one space packet on :data:`CFDP_APID` (0x7FD, the APID
  Yamcs' CFDP example uses), with no secondary header; :meth:`CfdpEntity.receive` takes
  such a packet, parses the PDU and hands it to the handler of its transaction: a pool of
  source handlers for transfers out, one destination handler per transaction in.
- **Flow control.** :meth:`CfdpEntity.take` is called by whoever owns the link with the
  bytes it can carry now; file data PDUs are made then, never queued ahead of the link.
  Transfers started first (the owner starts them in order of value) get the link first.
- **Time.** cfdp-py's timers read the *contact clock* (``now_s`` given to :meth:`poll`
  and :meth:`take`), which the owner advances only while the link is up: at LOS the
  timers freeze and the transfer carries on at the next AOS (docs/ccsds.md, "CFDP").
- **What cfdp-py 0.7.0 leaves to its user** (each counted in :attr:`CfdpEntity.stats`):
  every EOF is acknowledged, also a repeat one and one of a finished transaction (CFDP
  4.7.2); a repeated Finished reaching an idle source is acknowledged; PDUs of finished
  transactions are dropped, not taken for new ones; a Finished(cancel) from the receiver
  cancels a source still sending; a transaction with no PDU for ``inactivity_s`` of
  contact time is cancelled, then abandoned (cfdp-py has no inactivity timer).
- **Safety.** A destination path that leaves the entity's root (``..``) or names a folder
  the owner does not accept (``accept``) is refused; bad bytes are counted, never raised.

The library patches live in :mod:`fsw.ccsds.cfdp_patches` (applied on import).

>>> import tempfile
>>> tmp = Path(tempfile.mkdtemp())
>>> (tmp / "sat").mkdir(); (tmp / "gnd").mkdir()
>>> _ = (tmp / "sat" / "hello.txt").write_bytes(b"hello, ground")
>>> sat = CfdpEntity(CfdpConfig(local_id=42, remote_id=1), tmp / "sat")
>>> gnd = CfdpEntity(CfdpConfig(local_id=1, remote_id=42, packet_type=PacketType.TC),
...                  tmp / "gnd")
>>> tr = sat.put("hello.txt", "in/hello.txt", acknowledged=True)
>>> for t in range(20):
...     for pkt in sat.take(float(t), 10_000):
...         gnd.receive(pkt)
...     gnd.poll(float(t))
...     for pkt in gnd.take(float(t), 10_000):
...         sat.receive(pkt)
...     sat.poll(float(t))
>>> tr.state, tr.condition, (tmp / "gnd" / "in" / "hello.txt").read_bytes()
('finished', 'NO_ERROR', b'hello, ground')
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from cfdppy import CfdpState, PacketDestination, PutRequest, get_packet_destination
from cfdppy.exceptions import (
    InvalidDestinationId,
    InvalidPduDirection,
    InvalidPduForDestHandler,
    InvalidSourceId,
    InvalidTransactionSeqNum,
    NoRemoteEntityConfigFound,
    PduIgnoredForDest,
    PduIgnoredForSource,
    SourceFileDoesNotExist,
    UnretrievedPdusToBeSent,
)
from cfdppy.filestore import NativeFilestore
from cfdppy.handler import DestHandler, SourceHandler
from cfdppy.handler.dest import TransactionStep as DestStep
from cfdppy.handler.dest import acknowledge_inactive_eof_pdu
from cfdppy.handler.source import TransactionStep as SourceStep
from cfdppy.mib import (
    CheckTimerProvider,
    DefaultFaultHandlerBase,
    EntityType,
    IndicationConfig,
    LocalEntityConfig,
    RemoteEntityConfig,
    RemoteEntityConfigTable,
)
from cfdppy.user import (
    CfdpUserBase,
    FileSegmentRecvdParams,
    MetadataRecvParams,
    TransactionFinishedParams,
    TransactionParams,
)
from spacepackets.cfdp import (
    ChecksumType,
    ConditionCode,
    DeliveryCode,
    Direction,
    FileStatus,
    PduType,
    TransactionId,
    TransmissionMode,
)
from spacepackets.cfdp.pdu import AckPdu, DirectiveType, PduFactory, PduHolder
from spacepackets.cfdp.pdu.ack import TransactionStatus
from spacepackets.countdown import Countdown
from spacepackets.seqcount import ProvidesSeqCount
from spacepackets.util import ByteFieldU16, ByteFieldU32, UnsignedByteField

from fsw.ccsds import cfdp_patches
from fsw.ccsds.errors import CcsdsError
from fsw.ccsds.spacepacket import MAX_SEQ_COUNT, PRIMARY_HEADER_LEN, PacketType, encode_packet

cfdp_patches.apply()

log = logging.getLogger(__name__)

#: The APID CFDP PDUs travel on, both ways (mission-assigned: CCSDS reserves none for CFDP
#: in space packets; Yamcs' CFDP example uses 0x7FD).
CFDP_APID = 0x7FD
#: The largest PDU the ground sends up: one TC frame's data with the test SDLS SA
#: (994 bytes) less the 6-byte space packet header, so a PDU never spans two frames.
UPLINK_MAX_PDU = 988
#: The largest PDU sent down (TM frames carry packets across frame boundaries).
DOWNLINK_MAX_PDU = 1024
#: Folder (under the entity's root) where incoming files are written until verified.
PART_DIR = ".incoming"

_SOURCE_DATA_STEPS = (
    SourceStep.IDLE,
    SourceStep.TRANSACTION_START,
    SourceStep.SENDING_METADATA,
    SourceStep.SENDING_FILE_DATA,
    SourceStep.RETRANSMITTING,
    SourceStep.SENDING_EOF,
)
_ROUTINE = (
    PduIgnoredForSource,
    PduIgnoredForDest,
    NoRemoteEntityConfigFound,
    InvalidTransactionSeqNum,
    InvalidPduDirection,
    InvalidDestinationId,
    InvalidSourceId,
    InvalidPduForDestHandler,
)

Tid = tuple[int, int]


def _tid(t: TransactionId) -> Tid:
    return (int(t.source_id.value), int(t.seq_num.value))


@dataclass(slots=True, frozen=True)
class CfdpConfig:
    """One entity's settings (both ends must agree on ids, widths and checksum).

    Timers are in contact seconds. ``ack_limit`` expiries of the positive-ACK timer give
    ``ack_limit - 1`` resends (cfdp-py's counting); likewise for NAKs after the first.
    ``max_pdu_len`` is the largest PDU this entity sends (its file segments follow from it).
    """

    local_id: int
    remote_id: int
    packet_type: PacketType = PacketType.TM
    apid: int = CFDP_APID
    max_pdu_len: int = DOWNLINK_MAX_PDU
    ack_interval_s: float = 3.0
    ack_limit: int = 8
    nak_interval_s: float = 3.0
    nak_limit: int = 8
    check_interval_s: float = 10.0
    check_limit: int = 3
    inactivity_s: float = 120.0
    max_sources: int = 4
    max_dests: int = 8
    checksum: ChecksumType = ChecksumType.CRC_32

    def __post_init__(self) -> None:
        for name in ("local_id", "remote_id"):
            v = getattr(self, name)
            if not 0 <= v <= 0xFFFF:
                raise CcsdsError(f"CFDP {name} {v} outside 0..65535 (16-bit entity ids)")
        if self.local_id == self.remote_id:
            raise CcsdsError("CFDP local and remote entity ids must differ")
        if not 64 <= self.max_pdu_len <= 65536:
            raise CcsdsError(f"CFDP max_pdu_len {self.max_pdu_len} outside 64..65536")
        if self.max_sources < 1 or self.max_dests < 1:
            raise CcsdsError("CFDP needs at least one source and one destination handler")


@dataclass(slots=True)
class Transfer:
    """One transaction, as the owner sees it.

    ``state``: ``queued`` (waiting for a source handler), ``active``, ``finished`` (its
    Finished said NO_ERROR with the data complete), ``cancelled`` or ``failed`` (a fault;
    ``condition`` names it) or ``abandoned`` (no answer for the inactivity time).
    """

    direction: str  # "out" or "in"
    source: str
    dest: str
    acknowledged: bool
    tid: Tid | None = None
    size: int | None = None
    state: str = "queued"
    condition: str = ""
    delivered: bool = False
    progress: int = 0
    pdus: int = 0
    fd_pdus: int = 0
    fd_retransmitted: int = 0
    naks: int = 0
    eof_sent: bool = False
    verified_s: float | None = None
    started_s: float | None = None
    ended_s: float | None = None
    tag: Any = None
    _offsets: set[int] = field(default_factory=set, repr=False)

    @property
    def done(self) -> bool:
        """True once the transaction ended, one way or another."""
        return self.state not in ("queued", "active")


class StoredSeqCount(ProvidesSeqCount):
    """Transaction sequence numbers (32-bit) that survive a reboot: each one is saved
    (written, fsynced, renamed) before it is used. Without a path, or when the file is
    missing or damaged, counting starts at ``start`` (give a clock-derived value, so a
    lost counter does not reuse numbers the other end remembers as finished).

    >>> c = StoredSeqCount(None, start=7)
    >>> c.get_and_increment(), c.get_and_increment()
    (7, 8)
    """

    def __init__(self, path: Path | None, *, start: int = 0) -> None:
        self.path = path
        self._next = start & 0xFFFF_FFFF
        if path is not None:
            with contextlib.suppress(OSError, ValueError):
                self._next = (int(path.read_text().strip()) + 0) & 0xFFFF_FFFF

    @property
    def max_bit_width(self) -> int:
        return 32

    @max_bit_width.setter
    def max_bit_width(self, width: int) -> None:  # the protocol has a setter; fixed here
        if width != 32:
            raise CcsdsError("CFDP transaction numbers are 32-bit in Gnomon")

    def get_and_increment(self) -> int:
        n = self._next
        self._next = (n + 1) & 0xFFFF_FFFF
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            try:
                with open(tmp, "w", encoding="ascii") as fh:
                    fh.write(f"{self._next}\n")
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except OSError as exc:
                log.error("CFDP sequence number not saved (%s): reuse possible after a reset", exc)
        return n


class _Timers(CheckTimerProvider):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def provide_check_timer(
        self,
        local_entity_id: UnsignedByteField,
        remote_entity_id: UnsignedByteField,
        entity_type: EntityType,
    ) -> Countdown:
        return cfdp_patches.ContactCountdown(timedelta(seconds=self.seconds))


class _Faults(DefaultFaultHandlerBase):
    def __init__(self, entity: CfdpEntity) -> None:
        super().__init__()
        self.entity = entity

    def notice_of_suspension_cb(
        self, transaction_id: TransactionId, cond: ConditionCode, progress: int
    ) -> None:
        self.entity._fault(transaction_id, cond, "suspended")

    def notice_of_cancellation_cb(
        self, transaction_id: TransactionId, cond: ConditionCode, progress: int
    ) -> None:
        self.entity._fault(transaction_id, cond, "cancelled")

    def abandoned_cb(
        self, transaction_id: TransactionId, cond: ConditionCode, progress: int
    ) -> None:
        self.entity._fault(transaction_id, cond, "abandoned")

    def ignore_cb(self, transaction_id: TransactionId, cond: ConditionCode, progress: int) -> None:
        self.entity._fault(transaction_id, cond, "ignored")


class _User(CfdpUserBase):
    """cfdp-py's user callbacks, forwarded to the entity (six of the eleven are ever
    called by 0.7.0; the others are required by the base class)."""

    def __init__(self, entity: CfdpEntity, vfs: NativeFilestore) -> None:
        super().__init__(vfs)
        self.entity = entity

    def transaction_indication(self, transaction_indication_params: TransactionParams) -> None:
        return None

    def eof_sent_indication(self, transaction_id: TransactionId) -> None:
        return None

    def transaction_finished_indication(self, params: TransactionFinishedParams) -> None:
        self.entity._finished(params)

    def metadata_recv_indication(self, params: MetadataRecvParams) -> None:
        self.entity._metadata(params)

    def file_segment_recv_indication(self, params: FileSegmentRecvdParams) -> None:
        return None

    def report_indication(self, transaction_id: TransactionId, status_report: Any) -> None:
        return None

    def suspended_indication(self, transaction_id: TransactionId, cond_code: ConditionCode) -> None:
        return None

    def resumed_indication(self, transaction_id: TransactionId, progress: int) -> None:
        return None

    def fault_indication(
        self, transaction_id: TransactionId, cond_code: ConditionCode, progress: int
    ) -> None:
        return None

    def abandoned_indication(
        self, transaction_id: TransactionId, cond_code: ConditionCode, progress: int
    ) -> None:
        return None

    def eof_recv_indication(self, transaction_id: TransactionId) -> None:
        return None


class _RootedFilestore(NativeFilestore):
    """cfdp-py's native filestore with every path under ``root`` (relative paths, and
    absolute ones re-rooted); the entity checks ``..`` before a path gets here."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def _local(self, p: Path) -> Path:
        p = Path(p)
        if p.is_relative_to(self.root):
            return p
        return self.root / (p.relative_to(p.anchor) if p.is_absolute() else p)

    def read_data(self, file: Path, offset: int | None, read_len: int | None = None) -> bytes:
        return super().read_data(self._local(file), offset, read_len)

    def read_from_opened_file(self, bytes_io: Any, offset: int, read_len: int) -> bytes:
        return super().read_from_opened_file(bytes_io, offset, read_len)

    def is_directory(self, path: Path) -> bool:
        return super().is_directory(self._local(path))

    def filename_from_full_path(self, path: Path) -> str | None:
        return super().filename_from_full_path(self._local(path))

    def file_exists(self, path: Path) -> bool:
        return super().file_exists(self._local(path))

    def truncate_file(self, file: Path) -> None:
        super().truncate_file(self._local(file))

    def file_size(self, file: Path) -> int:
        return super().file_size(self._local(file))

    def write_data(self, file: Path, data: bytes, offset: int | None) -> None:
        super().write_data(self._local(file), data, offset)

    def create_file(self, file: Path) -> Any:
        self._local(file).parent.mkdir(parents=True, exist_ok=True)
        return super().create_file(self._local(file))

    def delete_file(self, file: Path) -> Any:
        return super().delete_file(self._local(file))

    def rename_file(self, _old_file: Path, _new_file: Path) -> Any:
        return super().rename_file(self._local(_old_file), self._local(_new_file))

    def replace_file(self, _replaced_file: Path, _source_file: Path) -> Any:
        return super().replace_file(self._local(_replaced_file), self._local(_source_file))

    def create_directory(self, _dir_name: Path) -> Any:
        return super().create_directory(self._local(_dir_name))

    def remove_directory(self, dir_name: Path, recursive: bool = False) -> Any:
        return super().remove_directory(self._local(dir_name), recursive)

    def list_directory(self, _dir_name: Path, _target_file: Path, _recursive: bool = False) -> Any:
        return super().list_directory(self._local(_dir_name), self._local(_target_file), _recursive)

    def calculate_checksum(
        self,
        checksum_type: ChecksumType,
        file_path: Path,
        size_to_verify: int,
        segment_len: int = 4096,
    ) -> bytes:
        return super().calculate_checksum(
            checksum_type, self._local(file_path), size_to_verify, segment_len
        )


def safe_relative(path: str) -> str | None:
    """``path`` as a clean relative POSIX path, or None if it could leave its root.

    >>> safe_relative("models/new.gnm"), safe_relative("/uplink/a.bin"), safe_relative("../x")
    ('models/new.gnm', 'uplink/a.bin', None)
    """
    p = PurePosixPath(path.replace("\\", "/"))
    parts = [s for s in p.parts if s not in ("/", "", ".")]
    if not parts or any(s == ".." for s in parts):
        return None
    return "/".join(parts)


class CfdpEntity:
    """A CFDP entity with its files under ``root`` (see the module docstring).

    ``accept(dest_path, size)`` decides whether an incoming file may be written (return
    None to accept, or the reason to refuse); ``seq`` numbers the transactions this entity
    starts (default: in memory). ``on_done(transfer)`` is called when a transaction ends.
    ``journal``: a file listing the outgoing transfers not yet ended (rewritten, fsynced
    and renamed at each change); an entity made on it after a reset sends them again
    from the start (``stats["restarted_out"]``), as cfdp-py keeps no state on disk.
    """

    def __init__(
        self,
        config: CfdpConfig,
        root: Path,
        *,
        seq: ProvidesSeqCount | None = None,
        accept: Callable[[str, int | None], str | None] | None = None,
        on_done: Callable[[Transfer], None] | None = None,
        journal: Path | None = None,
    ) -> None:
        self.config = config
        self.journal = journal
        self.root = root
        self.accept = accept
        self.on_done = on_done
        self._now_s = 0.0
        vfs = _RootedFilestore(root)
        self._user = _User(self, vfs)
        self._faults = _Faults(self)
        local = ByteFieldU16(config.local_id)
        remote = ByteFieldU16(config.remote_id)
        mode = TransmissionMode.ACKNOWLEDGED
        self._remote_cfg = RemoteEntityConfig(
            entity_id=remote,
            max_file_segment_len=None,
            max_packet_len=config.max_pdu_len,
            closure_requested=True,
            crc_on_transmission=False,  # frames carry FECF/MAC; Yamcs refuses PDU CRCs
            default_transmission_mode=mode,
            crc_type=config.checksum,
            positive_ack_timer_interval_seconds=config.ack_interval_s,
            positive_ack_timer_expiration_limit=config.ack_limit,
            check_limit=config.check_limit,
            immediate_nak_mode=True,
            nak_timer_interval_seconds=config.nak_interval_s,
            nak_timer_expiration_limit=config.nak_limit,
        )
        self._table = RemoteEntityConfigTable([self._remote_cfg])
        self._local_cfg = LocalEntityConfig(local, IndicationConfig(), self._faults)
        self._timers = _Timers(config.check_interval_s)
        self._seq = seq if seq is not None else StoredSeqCount(None)
        self._sources: list[tuple[SourceHandler, Transfer]] = []
        self._queue: deque[Transfer] = deque()
        self._dests: dict[Tid, tuple[DestHandler, Transfer]] = {}
        self._done_ids: deque[Tid] = deque(maxlen=4096)
        self._finished_set: set[Tid] = set()
        self._out: deque[bytes] = deque()
        self._out_bytes = 0
        self._sp_seq = 0
        self._last_rx: dict[Tid, float] = {}
        self._cancelled_at: dict[Tid, float] = {}
        self._final: dict[Tid, str] = {}  # incoming transaction -> its accepted path
        self.transfers: list[Transfer] = []
        self.last_error = ""
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "pdus_sent",
                "pdus_received",
                "bytes_sent",
                "fd_retransmitted",
                "glue_eof_acks",
                "glue_finished_acks",
                "stale_pdus",
                "routine_ignored",
                "errors",
                "refused",
                "inactivity_cancels",
                "abandoned",
                "started_out",
                "started_in",
                "finished_out",
                "finished_in",
                "failed_out",
                "failed_in",
                "restarted_out",
            ),
            0,
        )
        self._restart_journal()

    # ------------------------------------------------------------------ views
    @property
    def busy(self) -> bool:
        """True while a transfer is queued or running, or PDUs wait for the link."""
        return bool(self._sources or self._queue or self._dests or self._out)

    @property
    def active(self) -> list[Transfer]:
        """Transfers running now (both directions)."""
        return [t for _, t in self._sources] + [t for _, t in self._dests.values()]

    @property
    def queued(self) -> list[Transfer]:
        """Transfers waiting for a source handler, in start order."""
        return list(self._queue)

    @property
    def pending_bytes(self) -> int:
        """Bytes of PDUs made and waiting for the link."""
        return self._out_bytes

    def idle_sources(self) -> int:
        """Source handlers free to start a transfer now."""
        return self.config.max_sources - len(self._sources) - len(self._queue)

    # ------------------------------------------------------------------ starting
    def put(
        self, source: str | Path, dest: str, *, acknowledged: bool = True, tag: Any = None
    ) -> Transfer:
        """Queue the file ``source`` (under the root) to be sent to ``dest`` on the other
        end; class 2 (acknowledged) by default, class 1 with closure otherwise. Returns
        its :class:`Transfer` (``queued``; it starts when a source handler is free)."""
        src = safe_relative(str(source))
        dst = safe_relative(dest)
        if src is None or dst is None:
            raise CcsdsError(f"CFDP paths must stay under the file store: {source} -> {dest}")
        if not (self.root / src).is_file():
            raise CcsdsError(f"no file {src} to send")
        tr = Transfer("out", src, dst, acknowledged, tag=tag)
        self._queue.append(tr)
        self.transfers.append(tr)
        self._save_journal()
        self._start_queued()
        return tr

    def _restart_journal(self) -> None:
        if self.journal is None:
            return
        try:
            entries = json.loads(self.journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # none yet, or damaged: nothing to send again
        journal, self.journal = self.journal, None  # no rewrite until all are queued again
        for entry in entries if isinstance(entries, list) else []:
            try:
                src, dst, acked = str(entry[0]), str(entry[1]), bool(entry[2])
                self.put(src, dst, acknowledged=acked)
            except (CcsdsError, IndexError, TypeError):
                continue  # its file is gone: nothing to send
            self.stats["restarted_out"] += 1
        self.journal = journal
        self._save_journal()

    def _save_journal(self) -> None:
        if self.journal is None:
            return
        pending = [
            [t.source, t.dest, t.acknowledged]
            for t in self.transfers
            if t.direction == "out" and not t.done
        ]
        tmp = self.journal.with_suffix(".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(pending, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.journal)
        except OSError as exc:
            self._error(f"CFDP journal not saved ({exc}): a reset would not resend")

    def _start_queued(self) -> None:
        while self._queue and len(self._sources) < self.config.max_sources:
            tr = self._queue.popleft()
            handler = SourceHandler(
                self._local_cfg, self._user, self._table, self._timers, self._seq
            )
            mode = (
                TransmissionMode.ACKNOWLEDGED
                if tr.acknowledged
                else TransmissionMode.UNACKNOWLEDGED
            )
            req = PutRequest(
                destination_id=ByteFieldU16(self.config.remote_id),
                source_file=Path(tr.source),
                dest_file=Path(tr.dest),
                trans_mode=mode,
                closure_requested=True,
            )
            try:
                with cfdp_patches.stepping_at(self._now_s):
                    handler.put_request(req)
                    handler.state_machine()
            except (SourceFileDoesNotExist, NoRemoteEntityConfigFound, OSError) as exc:
                tr.state, tr.condition = "failed", f"cannot start: {exc}"
                self._end(tr)
                continue
            tid = handler.transaction_id
            tr.tid = _tid(tid) if tid is not None else None
            tr.size = handler.file_size
            tr.state = "active"
            tr.started_s = self._now_s
            self.stats["started_out"] += 1
            self._sources.append((handler, tr))
            self._drain(handler, tr)

    def cancel(self, tr: Transfer) -> bool:
        """Cancel a transfer (queued: dropped; running: the CFDP cancel procedure)."""
        if tr in self._queue:
            self._queue.remove(tr)
            tr.state, tr.condition = "cancelled", "CANCEL_REQUEST_RECEIVED"
            self._end(tr)
            return True
        for handler, t in self._handlers():
            if t is tr and tr.tid is not None:
                return self._cancel(handler, tr)
        return False

    def _cancel(self, handler: SourceHandler | DestHandler, tr: Transfer) -> bool:
        assert tr.tid is not None
        tid = TransactionId(ByteFieldU16(tr.tid[0]), _seq_field(tr.tid[1]))
        try:
            with cfdp_patches.stepping_at(self._now_s):
                self._drain(handler, tr)
                ok = bool(handler.cancel_request(tid))
                self._drain(handler, tr)
        except UnretrievedPdusToBeSent:
            ok = False
        self._cancelled_at.setdefault(tr.tid, self._now_s)
        self._reap()
        return ok

    def _handlers(self) -> Iterator[tuple[SourceHandler | DestHandler, Transfer]]:
        yield from self._sources
        yield from self._dests.values()

    # ------------------------------------------------------------------ the link
    def _emit(self, holder: PduHolder, tr: Transfer | None) -> None:
        if holder.pdu is None:
            return
        raw = holder.pdu.pack()
        pkt = encode_packet(
            self.config.apid, bytes(raw), self.config.packet_type, seq_count=self._sp_seq
        )
        self._sp_seq = (self._sp_seq + 1) & MAX_SEQ_COUNT
        self._out.append(pkt)
        self._out_bytes += len(pkt)
        if tr is not None:
            tr.pdus += 1
            if holder.pdu_type == PduType.FILE_DATA:
                tr.fd_pdus += 1
                off = holder.to_file_data_pdu().offset
                if off in tr._offsets:
                    tr.fd_retransmitted += 1
                    self.stats["fd_retransmitted"] += 1
                tr._offsets.add(off)
            elif tr.direction == "out" and holder.pdu_directive_type == DirectiveType.EOF_PDU:
                tr.eof_sent = True
            elif (
                tr.direction == "in"
                and tr.verified_s is None
                and holder.pdu_directive_type == DirectiveType.FINISHED_PDU
                and holder.pdu.condition_code == ConditionCode.NO_ERROR
                and holder.pdu.delivery_code == DeliveryCode.DATA_COMPLETE
            ):
                tr.verified_s = self._now_s  # every byte here and the checksum verified

    def _drain(self, handler: SourceHandler | DestHandler, tr: Transfer | None) -> None:
        while handler.packets_ready:
            nxt = handler.get_next_packet()
            if nxt is None:
                break
            self._emit(nxt, tr)

    def take(self, now_s: float, max_bytes: int) -> list[bytes]:
        """Space packets for the link, about ``max_bytes`` of them (at least one PDU if
        any is ready): answers and retransmissions first, then new file data, transfers
        started first served first. ``now_s`` is the contact clock."""
        self._now_s = max(self._now_s, now_s)
        out: list[bytes] = []
        size = 0
        while True:
            while self._out and (size < max_bytes or not out):
                pkt = self._out.popleft()
                self._out_bytes -= len(pkt)
                out.append(pkt)
                size += len(pkt)
            if size >= max_bytes or not self._more_data():
                break
        self.stats["pdus_sent"] += len(out)
        self.stats["bytes_sent"] += size
        self._reap()
        return out

    def _more_data(self) -> bool:
        """Make the next file data PDU of the first source still sending; False if none."""
        for handler, tr in self._sources:
            if handler.state == CfdpState.BUSY and handler.step in _SOURCE_DATA_STEPS:
                before = len(self._out)
                self._step(handler, tr, None)
                if len(self._out) > before:
                    return True
        return False

    def receive(self, packet: bytes) -> None:
        """One space packet from the link (this entity's APID); never raises."""
        try:
            if len(packet) <= PRIMARY_HEADER_LEN:
                raise CcsdsError("CFDP packet without a PDU")
            length = ((packet[4] << 8) | packet[5]) + 1
            pdu = PduFactory.from_raw(
                bytes(packet[PRIMARY_HEADER_LEN : PRIMARY_HEADER_LEN + length])
            )
            if pdu is None:
                raise CcsdsError("not a CFDP PDU")
        except Exception as exc:  # third-party parser: bad bytes must not stop the entity
            self._error(f"undecodable CFDP packet: {type(exc).__name__}: {exc}")
            return
        self.stats["pdus_received"] += 1
        try:
            if get_packet_destination(pdu) == PacketDestination.DEST_HANDLER:
                self._to_dest(pdu)
            else:
                self._to_source(pdu)
        except _ROUTINE:
            self.stats["routine_ignored"] += 1
        except Exception as exc:  # a library fault on odd input: counted, never raised
            self._error(f"CFDP PDU not handled: {type(exc).__name__}: {exc}")
        self._reap()

    def _error(self, text: str) -> None:
        self.stats["errors"] += 1
        self.last_error = text[:200]
        log.warning("%s", self.last_error)

    # ------------------------------------------------------------------ towards us as source
    def _to_source(self, pdu: Any) -> None:
        tid = (int(pdu.source_entity_id.value), int(pdu.transaction_seq_num.value))
        for handler, tr in self._sources:
            if tr.tid == tid:
                is_fin = _directive(pdu) == DirectiveType.FINISHED_PDU
                if pdu.directive_type == DirectiveType.NAK_PDU:
                    tr.naks += 1
                if (
                    is_fin
                    and pdu.condition_code != ConditionCode.NO_ERROR
                    and handler.step in _SOURCE_DATA_STEPS
                ):
                    self._cancel(handler, tr)  # the receiver gave up: stop sending
                self._last_rx[tid] = self._now_s
                self._step(handler, tr, pdu)
                return
        if (
            _directive(pdu) == DirectiveType.FINISHED_PDU
            and pdu.transmission_mode == TransmissionMode.ACKNOWLEDGED
        ):
            self._ack(pdu, DirectiveType.FINISHED_PDU, TransactionStatus.TERMINATED)
            self.stats["glue_finished_acks"] += 1
            return
        self.stats["stale_pdus"] += 1

    # ------------------------------------------------------------------ towards us as receiver
    def _to_dest(self, pdu: Any) -> None:
        tid = (int(pdu.source_entity_id.value), int(pdu.transaction_seq_num.value))
        directive = _directive(pdu)
        acked = pdu.transmission_mode == TransmissionMode.ACKNOWLEDGED
        entry = self._dests.get(tid)
        if entry is not None:
            handler, tr = entry
            self._last_rx[tid] = self._now_s
            if directive == DirectiveType.METADATA_PDU and tid in self._final:
                pdu.dest_file_name = _part_name(tid)  # a repeat: its name was settled
            elif directive == DirectiveType.METADATA_PDU and (reason := self._refusal(pdu)):
                self.stats["refused"] += 1  # metadata that came after its file data
                self.last_error = f"incoming file refused: {reason}"[:200]
                self._cancel(handler, tr)
                return
            if (
                directive == DirectiveType.EOF_PDU
                and acked
                and handler.step
                in (DestStep.WAITING_FOR_MISSING_DATA, DestStep.WAITING_FOR_FINISHED_ACK)
            ):
                self._ack(pdu, DirectiveType.EOF_PDU, TransactionStatus.ACTIVE)
                self.stats["glue_eof_acks"] += 1
                return
            self._step(handler, tr, pdu)
            return
        if tid in self._finished_set:
            if directive == DirectiveType.EOF_PDU and acked:
                self._queue_pdu(acknowledge_inactive_eof_pdu(pdu, TransactionStatus.TERMINATED))
                self.stats["glue_eof_acks"] += 1
            else:
                self.stats["stale_pdus"] += 1
            return
        if directive != DirectiveType.METADATA_PDU and not acked:
            self.stats["stale_pdus"] += 1  # class 1 starts only on its Metadata
            return
        if directive == DirectiveType.METADATA_PDU:
            reason = self._refusal(pdu)
            if reason:
                self.stats["refused"] += 1
                self.last_error = f"incoming file refused: {reason}"[:200]
                log.warning("%s", self.last_error)
                self._remember_finished(tid)
                return
        if len(self._dests) >= self.config.max_dests:
            self.stats["refused"] += 1
            self.last_error = "incoming file refused: too many transfers at once"
            return
        handler = DestHandler(copy.copy(self._local_cfg), self._user, self._table, self._timers)
        dest = getattr(pdu, "dest_file_name", None) or ""
        dest = self._final.get(tid, dest)
        tr = Transfer("in", getattr(pdu, "source_file_name", None) or "", dest, acked, tid=tid)
        tr.state = "active"
        tr.started_s = self._now_s
        self.transfers.append(tr)
        self._dests[tid] = (handler, tr)
        self._last_rx[tid] = self._now_s
        self.stats["started_in"] += 1
        self._step(handler, tr, pdu)

    def _refusal(self, pdu: Any) -> str | None:
        """Why an incoming file may not be written (None: accepted). An accepted file is
        written under :data:`PART_DIR` and moved to its place only once its checksum
        verified (:meth:`_close`), so a partial, corrupt or refused file never appears
        under its real name, and a bogus transaction (a damaged PDU that looks like a
        new one) cannot truncate a delivered file."""
        dest = pdu.dest_file_name
        if dest is None:
            return None  # a metadata-only transaction (no file)
        clean = safe_relative(dest)
        if clean is None:
            return f"destination {dest!r} leaves the file store"
        if clean.split("/")[0] == PART_DIR:
            return f"destination {dest!r} is in the incoming area"
        if self.accept is not None and (reason := self.accept(clean, pdu.file_size)):
            return reason
        tid = (int(pdu.source_entity_id.value), int(pdu.transaction_seq_num.value))
        self._final[tid] = clean
        pdu.dest_file_name = _part_name(tid)
        entry = self._dests.get(tid)
        if entry is not None:
            entry[1].dest = clean
        return None

    # ------------------------------------------------------------------ common
    def _step(self, handler: SourceHandler | DestHandler, tr: Transfer, pdu: Any) -> None:
        with cfdp_patches.stepping_at(self._now_s):
            try:
                handler.state_machine(pdu)
            finally:
                self._drain(handler, tr)
        tr.progress = int(getattr(handler, "progress", 0) or tr.progress)

    def _queue_pdu(self, pdu: Any) -> None:
        self._emit(PduHolder(pdu), None)

    def _ack(self, pdu: Any, acked: DirectiveType, status: TransactionStatus) -> None:
        conf = copy.copy(pdu.pdu_header.pdu_conf)
        conf.direction = (
            Direction.TOWARDS_SENDER
            if acked == DirectiveType.EOF_PDU
            else Direction.TOWARDS_RECEIVER
        )
        self._queue_pdu(AckPdu(conf, acked, pdu.condition_code, status))

    def poll(self, now_s: float) -> None:
        """Run the timers at contact time ``now_s`` (call it every tick while in contact;
        not during LOS, so the timers freeze)."""
        self._now_s = max(self._now_s, now_s)
        for handler, tr in list(self._sources):
            if handler.state == CfdpState.BUSY and handler.step not in _SOURCE_DATA_STEPS:
                self._guarded_step(handler, tr)
        for handler, tr in list(self._dests.values()):
            if handler.state == CfdpState.BUSY:
                self._guarded_step(handler, tr)
        self._inactivity()
        self._reap()
        self._start_queued()

    def _guarded_step(self, handler: SourceHandler | DestHandler, tr: Transfer) -> None:
        try:
            self._step(handler, tr, None)
        except _ROUTINE:
            self.stats["routine_ignored"] += 1
        except Exception as exc:  # a library fault: counted, never raised
            self._error(f"CFDP timer step failed: {type(exc).__name__}: {exc}")

    def _inactivity(self) -> None:
        limit = self.config.inactivity_s
        for handler, tr in list(self._handlers()):
            if tr.tid is None or handler.state != CfdpState.BUSY:
                continue
            waiting = tr.direction == "in" or handler.step not in _SOURCE_DATA_STEPS
            if not waiting:
                continue
            last = self._last_rx.get(tr.tid, tr.started_s or self._now_s)
            cancelled = self._cancelled_at.get(tr.tid)
            if cancelled is not None:
                if self._now_s - cancelled >= limit:
                    handler.reset()  # nobody answers even the cancel: abandon
                    tr.state, tr.condition = "abandoned", tr.condition or "INACTIVITY_DETECTED"
                    self.stats["abandoned"] += 1
            elif self._now_s - last >= limit:
                self.stats["inactivity_cancels"] += 1
                tr.condition = "INACTIVITY_DETECTED"
                self._cancel(handler, tr)

    def _reap(self) -> None:
        """Retire handlers that went idle."""
        keep: list[tuple[SourceHandler, Transfer]] = []
        for handler, tr in self._sources:
            if handler.state == CfdpState.IDLE and not handler.packets_ready:
                self._close(tr)
            else:
                keep.append((handler, tr))
        self._sources = keep
        for tid, (handler, tr) in list(self._dests.items()):
            if handler.state == CfdpState.IDLE and not handler.packets_ready:
                del self._dests[tid]
                self._remember_finished(tid)
                self._close(tr)
        if self._queue and len(self._sources) < self.config.max_sources:
            self._start_queued()

    def _remember_finished(self, tid: Tid) -> None:
        if len(self._done_ids) == self._done_ids.maxlen:
            self._finished_set.discard(self._done_ids[0])
        self._done_ids.append(tid)
        self._finished_set.add(tid)

    def _close(self, tr: Transfer) -> None:
        if tr.state == "active":  # ended without a finished indication (class 1 cancel)
            tr.state = "cancelled" if tr.condition else "failed"
            tr.condition = tr.condition or "NO_INDICATION"
        if tr.tid is not None:
            self._last_rx.pop(tr.tid, None)
            self._cancelled_at.pop(tr.tid, None)
            if tr.direction == "in":
                self._settle(tr)
        self._end(tr)

    def _settle(self, tr: Transfer) -> None:
        """An incoming file ended: a verified one moves to its real name, any other
        partial file is deleted."""
        assert tr.tid is not None
        final = self._final.pop(tr.tid, None)
        part = self.root / _part_name(tr.tid)
        try:
            if tr.state == "finished" and final is not None and part.is_file():
                target = self.root / final
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(part, target)
            else:
                part.unlink(missing_ok=True)
        except OSError as exc:
            tr.state, tr.condition = "failed", f"file not stored: {exc}"[:120]
            self._error(f"CFDP incoming file {final} not stored: {exc}")

    def _end(self, tr: Transfer) -> None:
        tr.ended_s = self._now_s
        tr._offsets = set()
        if tr.direction == "out":
            self._save_journal()
        key = "finished" if tr.state == "finished" else "failed"
        self.stats[f"{key}_{tr.direction}"] += 1
        if self.on_done is not None:
            self.on_done(tr)

    # ------------------------------------------------------------------ user callbacks
    def _find(self, tid: TransactionId) -> Transfer | None:
        key = _tid(tid)
        for _, tr in self._handlers():
            if tr.tid == key:
                return tr
        return None

    def _finished(self, params: TransactionFinishedParams) -> None:
        tr = self._find(params.transaction_id)
        if tr is None:
            return
        fp = params.finished_params
        tr.condition = fp.condition_code.name
        tr.delivered = fp.delivery_code == DeliveryCode.DATA_COMPLETE and (
            tr.direction == "out" or fp.file_status == FileStatus.FILE_RETAINED
        )
        ok = fp.condition_code == ConditionCode.NO_ERROR and tr.delivered
        tr.state = "finished" if ok else "failed"

    def _metadata(self, params: MetadataRecvParams) -> None:
        tr = self._find(params.transaction_id)
        if tr is not None:
            tr.size = params.file_size
            tr.source = params.source_file_name or tr.source
            tid = _tid(params.transaction_id)
            tr.dest = self._final.get(tid, params.dest_file_name or tr.dest)

    def _fault(self, tid: TransactionId, cond: ConditionCode, what: str) -> None:
        tr = self._find(tid)
        log.info("CFDP transaction %s: %s (%s)", _tid(tid), what, cond.name)
        if tr is not None and not tr.condition:
            tr.condition = cond.name


def _part_name(tid: Tid) -> str:
    return f"{PART_DIR}/{tid[0]}-{tid[1]}.part"


def _directive(pdu: Any) -> DirectiveType | None:
    if pdu.pdu_type != PduType.FILE_DIRECTIVE:
        return None
    return pdu.directive_type


def _seq_field(n: int) -> UnsignedByteField:
    return ByteFieldU32(n)


__all__ = [
    "CFDP_APID",
    "DOWNLINK_MAX_PDU",
    "PART_DIR",
    "UPLINK_MAX_PDU",
    "CfdpConfig",
    "CfdpEntity",
    "StoredSeqCount",
    "Transfer",
    "safe_relative",
]
