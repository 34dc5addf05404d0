"""The on-board CFDP entity as a flight component: files down, files (and models) up.

:class:`Cfdp` owns a :class:`~fsw.ccsds.cfdp.CfdpEntity` whose files live under one
directory (the on-board file store, given by configuration). PDUs travel in space packets
on APID 0x7FD over the existing link: uplinked ones are routed to it past the command
dispatcher (:meth:`FlightSoftware.route_apid`), and it fills the downlink's room after
the queued TM (:meth:`FlightSoftware.add_downlink_source`).

**Contact clock.** CFDP's timers run on contact time: it advances only while the radio
takes downlink (each pull adds the time since the previous one, at most
:data:`MAX_CONTACT_GAP_S`), so an LOS freezes every transfer and the next pass resumes it
(docs/ccsds.md, "CFDP").

**Data products by value.** Given the file store (``products``: ``build_flight`` passes
the ``files`` component), the entity sends its pending data products down by itself while
the radio is up, most valuable first (the scheduler's value x keep confidence), class 2,
``product_transfers`` products at a time (0: none; the ground then sends files with
``FILE_SEND``). A product is marked delivered when the Finished of each of its files says
the ground has it whole; a failed transfer offers the product again later. A reboot resumes
through the outgoing journal (the files it re-queues are adopted, not sent twice). Product
files are counted in ``files_sent`` without one ``FILE_DELIVERED`` event each (a pass
delivers hundreds; ``files.products_delivered`` counts them).

**Uploads.** The ground may write only under ``uplink/`` (``accept``), at most
``max_upload_kb``. A ``.gnm`` under ``uplink/models/`` is verified when it arrives (every
CRC, the SHA-256: :func:`fsw.ai.gnm.verify`); a damaged or truncated one is deleted and
reported (``UPLOAD_REFUSED``). ``MODEL_ACTIVATE`` verifies the file again, loads it and
flies it in place of the small or large model; ``MODEL_ROLLBACK`` puts the previous
one back. A model that fails is refused and the running one stays.

>>> import tempfile
>>> from pathlib import Path
>>> from fsw.app import build_flight
>>> fs = build_flight(files_dir=Path(tempfile.mkdtemp()))
>>> fs.component("cfdp").entity.config.apid == 0x7FD
True
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fsw.ai.errors import AiError
from fsw.ai.gnm import verify as verify_gnm
from fsw.ccsds.cfdp import CFDP_APID, CfdpConfig, CfdpEntity, StoredSeqCount, Transfer
from fsw.ccsds.errors import CcsdsError
from fsw.core import (
    Arg,
    Channel,
    CommandFailed,
    Component,
    Event,
    FailureCode,
    Param,
    Severity,
    command,
)
from fsw.core.persistence import clip

if TYPE_CHECKING:
    from fsw.ai.runtime import Runtime

#: The largest contact-clock step one downlink pull adds (an LOS adds no more than this).
MAX_CONTACT_GAP_S = 2.0
#: Bytes a downlink packet slot stands for when the radio asks for N packets (the radio
#: counts packets of about this size; a PDU is up to 1030 bytes, and at least one goes).
SLOT_BYTES = 110
UPLINK_DIR = "uplink"
MODEL_DIR = "uplink/models"
VARIANTS = ("small", "large")
#: Which uploaded model flies as which variant (JSON, under the file store).
ACTIVE_FILE = ".active-models.json"

#: The radio pulled downlink within this long: in contact (products may be started).
CONTACT_RECENT_S = 5.0


class ProductSource(Protocol):
    """What the entity needs of the on-board file store to deliver its data products
    (:class:`fsw.storage.files.FileStore` is one)."""

    def pending(self) -> Sequence[Any]:
        """Products not yet delivered (objects with a ``name``), most valuable first."""
        ...

    def paths(self, product: Any) -> list[Path]:
        """A product's files."""
        ...

    def mark_delivered(self, name: str) -> None:
        """The ground has the product whole."""
        ...


_NAME = Arg("name", "str", max_len=120)
_REASON = Arg("reason", "str", max_len=120)


class Cfdp(Component):
    """The on-board CFDP entity: file delivery and upload, model activation and rollback."""

    NAME = "cfdp"
    DESCRIPTION = "CFDP file transfer (class 1 and 2) on APID 0x7FD; model upload and activation."
    TELEMETRY = (
        Channel("files_sent", "u32", description="files delivered to the ground", id=4),
        Channel("files_received", "u32", description="files received and verified", id=5),
        Channel("transfers_failed", "u32", description="transfers that ended in a fault", id=6),
        Channel("uploads_refused", "u32", description="uploads refused or failing checks", id=7),
        Channel("active_transfers", "u16", description="transfers running or queued", id=8),
        Channel("pdus_sent", "u32", description="CFDP PDUs sent down", id=9),
        Channel("pdus_received", "u32", description="CFDP PDUs received", id=10),
        Channel("fd_retransmitted", "u32", description="file data PDUs sent again", id=11),
        Channel("pdu_errors", "u32", description="undecodable or unhandled PDUs", id=12),
        Channel("contact_s", "f64", description="CFDP contact clock (s)", id=13),
        Channel("models_activated", "u32", description="uploaded models activated", id=14),
        Channel("bytes_sent", "u32", description="CFDP bytes sent down (space packets)", id=15),
    )
    EVENTS = (
        Event(
            "FILE_RECEIVED",
            Severity.LOW,
            "file {name} received ({size} bytes, checksum verified)",
            (_NAME, Arg("size", "u32")),
            id=1,
        ),
        Event(
            "FILE_DELIVERED",
            Severity.LOW,
            "file {name} delivered to the ground ({size} bytes)",
            (_NAME, Arg("size", "u32")),
            id=2,
        ),
        Event(
            "TRANSFER_FAILED",
            Severity.MEDIUM,
            "transfer of {name} ended: {reason}",
            (_NAME, _REASON),
            id=3,
        ),
        Event(
            "UPLOAD_REFUSED",
            Severity.MEDIUM,
            "upload {name} refused: {reason}",
            (_NAME, _REASON),
            id=4,
        ),
        Event(
            "MODEL_ACTIVATED",
            Severity.MEDIUM,
            "{variant} model is now {name}",
            (Arg("variant", "str", max_len=8), _NAME),
            id=5,
        ),
        Event(
            "MODEL_ROLLED_BACK",
            Severity.MEDIUM,
            "{variant} model rolled back to {name}",
            (Arg("variant", "str", max_len=8), _NAME),
            id=6,
        ),
        Event(
            "MODEL_REFUSED",
            Severity.HIGH,
            "model {name} not activated: {reason}; the running model stays",
            (_NAME, _REASON),
            id=7,
        ),
    )
    PARAMETERS = (
        Param(
            "max_upload_kb",
            "u32",
            default=65536,
            min=1,
            description="largest file the ground may upload (KiB)",
            id=1,
        ),
        Param(
            "product_transfers",
            "u8",
            default=2,
            max=16,
            description="data products delivered at a time, most valuable first (0: none)",
            id=2,
        ),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 10.0

    def __init__(
        self,
        root: Path | None,
        config: CfdpConfig | None = None,
        *,
        payload: Any = None,
        scrubber: Any = None,
        products: ProductSource | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.products = products
        #: Products being delivered: name -> the files (relative paths) not yet finished.
        self._in_flight: dict[str, set[str]] = {}
        self._product_of: dict[str, str] = {}
        self._unsendable: set[str] = set()
        self._root = root
        self._config = config or CfdpConfig(local_id=1, remote_id=2)
        self._entity: CfdpEntity | None = None
        self.payload = payload
        self.scrubber = scrubber
        self._rx: deque[bytes] = deque()
        self._lock = threading.Lock()
        self._contact_s = 0.0
        self._last_pull: float | None = None
        self._done: deque[Transfer] = deque()
        self._previous: dict[str, Any] = {}
        self._counts = dict.fromkeys(
            ("files_sent", "files_received", "transfers_failed", "uploads_refused", "models"), 0
        )

    @property
    def root(self) -> Path:
        """The file store directory (without one configured: a temporary directory made
        at first use, as a flight without storage keeps everything in memory)."""
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="gnomon-files-"))
        self._root.mkdir(parents=True, exist_ok=True)
        return self._root

    @property
    def config(self) -> CfdpConfig:
        """The entity's configuration (ids, PDU sizes, timers, checksum)."""
        return self._config

    def configure(self, config: CfdpConfig) -> None:
        """Replace the entity's configuration before its first use, e.g. the modular
        checksum a Yamcs 5.12 ground needs (docs/yamcs.md, "CFDP"):

        >>> import dataclasses
        >>> from spacepackets.cfdp import ChecksumType
        >>> c = Cfdp(None)
        >>> c.configure(dataclasses.replace(c.config, checksum=ChecksumType.MODULAR))
        >>> c.entity.config.checksum == ChecksumType.MODULAR
        True
        """
        if self._entity is not None:
            raise CcsdsError("the CFDP entity is running: configure it before its first use")
        self._config = config

    @property
    def entity(self) -> CfdpEntity:
        """The CFDP entity (made at first use)."""
        if self._entity is None:
            root = self.root
            self._entity = CfdpEntity(
                self._config,
                root,
                seq=StoredSeqCount(root / ".cfdp-seq"),
                journal=root / ".cfdp-outgoing.json",
                accept=self._accept,
                on_done=self._on_done,
            )
        return self._entity

    # ------------------------------------------------------------------ the link
    def receive_packet(self, raw: bytes) -> None:
        """An uplinked space packet on the CFDP APID (any thread; handled next tick)."""
        self._rx.append(raw)

    def downlink(self, max_packets: int) -> list[bytes]:
        """Up to about ``max_packets`` CFDP packets for the radio; advances the contact clock."""
        now = self.clock.now_tai()
        if self._last_pull is not None:
            self._contact_s += min(max(0.0, now - self._last_pull), MAX_CONTACT_GAP_S)
        self._last_pull = now
        if self._entity is None:
            return []  # nothing was ever sent or received
        with self._lock:  # with no room: at most one PDU already made (an answer)
            return self.entity.take(self._contact_s, max_packets * SLOT_BYTES)

    # ------------------------------------------------------------------ the tick
    def on_tick(self, rate_group: str) -> None:
        self.tlm("contact_s", self._contact_s)
        if self._entity is None and not self._rx and not self._products_due():
            return
        with self._lock:
            while self._rx:
                self.entity.receive(self._rx.popleft())
            self.entity.poll(self._contact_s)
        while self._done:
            self._report(self._done.popleft())
        self._deliver_products()
        st = self.entity.stats
        for key in ("files_sent", "files_received", "transfers_failed", "uploads_refused"):
            self.tlm(key, self._counts[key])
        self.tlm("models_activated", self._counts["models"])
        self.tlm("active_transfers", len(self.entity.active) + len(self.entity.queued))
        self.tlm("pdus_sent", st["pdus_sent"])
        self.tlm("pdus_received", st["pdus_received"])
        self.tlm("fd_retransmitted", st["fd_retransmitted"])
        self.tlm("pdu_errors", st["errors"])
        self.tlm("bytes_sent", st["bytes_sent"] & 0xFFFF_FFFF)

    # ------------------------------------------------------------------ products
    def _products_due(self) -> bool:
        """Data products to start: a file store, the parameter, contact, room."""
        if self.products is None or self._last_pull is None:
            return False
        limit = int(self.param("product_transfers"))
        if len(self._in_flight) >= limit:
            return False
        return self.clock.now_tai() - self._last_pull <= CONTACT_RECENT_S

    def _deliver_products(self) -> None:
        """Start the most valuable pending products, up to ``product_transfers`` at a
        time (files the journal already re-queued after a reboot are adopted)."""
        if not self._products_due():
            return
        assert self.products is not None
        limit = int(self.param("product_transfers"))
        with self._lock:
            busy = {tr.source for tr in [*self.entity.active, *self.entity.queued]}
            for prod in self.products.pending():
                if len(self._in_flight) >= limit:
                    break
                if prod.name in self._in_flight or prod.name in self._unsendable:
                    continue
                try:
                    rels = [p.relative_to(self.root).as_posix() for p in self.products.paths(prod)]
                    for rel in rels:
                        if rel not in busy:
                            self.entity.put(rel, rel, acknowledged=True, tag=prod.name)
                except (ValueError, CcsdsError) as exc:
                    self._unsendable.add(prod.name)  # once: its files are gone or outside
                    self._counts["transfers_failed"] += 1
                    self.event("TRANSFER_FAILED", clip(prod.name, 120), clip(str(exc), 120))
                    continue
                self._in_flight[prod.name] = set(rels)
                for rel in rels:
                    self._product_of[rel] = prod.name

    def _product_done(self, tr: Transfer) -> bool:
        """Book a finished or failed product file; True when ``tr`` was one."""
        name = self._product_of.pop(tr.source, None)
        if name is None:
            return False
        left = self._in_flight.get(name)
        if left is None:
            return True
        if tr.state != "finished":
            del self._in_flight[name]  # offered again later, whole
            for rel in left:
                self._product_of.pop(rel, None)
            return True
        left.discard(tr.source)
        if not left:
            del self._in_flight[name]
            assert self.products is not None
            self.products.mark_delivered(name)
        return True

    def _accept(self, dest: str, size: int | None) -> str | None:
        if not dest.startswith(UPLINK_DIR + "/"):
            reason = f"the ground may write only under {UPLINK_DIR}/"
        elif size is not None and size > int(self.param("max_upload_kb")) * 1024:
            reason = f"{size} bytes is over max_upload_kb"
        else:
            return None
        self._counts["uploads_refused"] += 1
        self.event("UPLOAD_REFUSED", clip(dest, 120), reason)
        return reason

    def _on_done(self, tr: Transfer) -> None:
        self._done.append(tr)  # reported from on_tick (events need the executive's cycle)

    def _report(self, tr: Transfer) -> None:
        name = clip(tr.dest if tr.direction == "in" else tr.source, 120)
        product = tr.direction == "out" and self._product_done(tr)
        if tr.state != "finished":
            self._counts["transfers_failed"] += 1
            self.event("TRANSFER_FAILED", name, clip(f"{tr.state}: {tr.condition}", 120))
            return
        if tr.direction == "out":
            self._counts["files_sent"] += 1
            if not product:
                self.event("FILE_DELIVERED", name, int(tr.size or 0))
            return
        self._counts["files_received"] += 1
        self.event("FILE_RECEIVED", name, int(tr.size or 0))
        if tr.dest.startswith(MODEL_DIR + "/") and tr.dest.endswith(".gnm"):
            self._check_upload(self.root / tr.dest, name)

    def _check_upload(self, path: Path, name: str) -> None:
        try:
            problems = verify_gnm(path.read_bytes())
        except OSError as exc:
            problems_text = f"cannot read it: {exc}"
        else:
            if not problems:
                return
            problems_text = "; ".join(f"{p.region}: {p.message}" for p in problems[:2])
        self._counts["uploads_refused"] += 1
        with contextlib.suppress(OSError):
            path.unlink()
        self.event("UPLOAD_REFUSED", name, clip(problems_text, 120))

    # ------------------------------------------------------------------ commands
    @command(
        args=(
            Arg("path", "str", max_len=120, description="file under the file store"),
            Arg("dest", "str", max_len=120, description="path on the ground"),
            Arg("acknowledged", "bool", description="class 2 (true) or class 1 (false)"),
        ),
        description="Send an on-board file to the ground by CFDP (it waits for contact).",
        opcode=1,
    )
    def file_send(self, path: str, dest: str, acknowledged: bool) -> None:
        try:
            with self._lock:
                self.entity.put(path, dest, acknowledged=acknowledged)
        except CcsdsError as exc:
            raise CommandFailed(FailureCode.NOT_FOUND, exc.reason) from None

    @command(
        args=(Arg("seq", "u32", description="transaction sequence number"),),
        description="Cancel a CFDP transaction (either direction) by its sequence number.",
        opcode=2,
    )
    def file_cancel(self, seq: int) -> None:
        with self._lock:
            for tr in [*self.entity.active, *self.entity.queued]:
                if tr.tid is not None and tr.tid[1] == seq:
                    self.entity.cancel(tr)
                    return
        raise CommandFailed(FailureCode.NOT_FOUND, f"no transaction {seq} running")

    @command(
        args=(
            Arg("variant", "str", max_len=8, description="small or large"),
            Arg("path", "str", max_len=120, description=".gnm under uplink/models/"),
        ),
        description="Verify an uploaded model and fly it as the small or large model "
        "(the one it replaces is kept for MODEL_ROLLBACK).",
        opcode=3,
    )
    def model_activate(self, variant: str, path: str) -> None:
        if variant not in VARIANTS:
            raise CommandFailed(FailureCode.ARG_OUT_OF_RANGE, "variant is small or large")
        if self.payload is None:
            raise CommandFailed(FailureCode.EXECUTION_ERROR, "no payload to fly a model")
        reason = self._activate(variant, path)
        if reason:
            self._refuse(path, reason)
        self._save_active(variant, path.strip("/"))

    def _activate(self, variant: str, path: str) -> str | None:
        """Fly the uploaded model ``path`` as ``variant``; the reason if it cannot."""
        rel = path.strip("/")
        file = self.root / rel
        if not rel.startswith(MODEL_DIR + "/") or ".." in Path(rel).parts or not file.is_file():
            return f"no uploaded model {rel}"
        try:
            from fsw.ai.runtime import Runtime  # torch: only when a model is loaded

            runtime = Runtime.load(file)
        except (AiError, OSError) as exc:
            return str(exc)
        previous = self.payload.swap_model(variant, runtime)
        if self.scrubber is not None:
            self.scrubber.replace_model(previous, runtime)
        self._previous[variant] = previous
        self._counts["models"] += 1
        self.event("MODEL_ACTIVATED", variant, clip(f"{runtime.name} ({rel})", 120))
        return None

    def _save_active(self, variant: str, rel: str | None) -> None:
        """Remember which uploaded model flies (a reboot flies it again)."""
        path = self.root / ACTIVE_FILE
        try:
            active = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            active = {}
        if not isinstance(active, dict):
            active = {}
        if rel is None:
            active.pop(variant, None)
        else:
            active[variant] = rel
        tmp = path.with_suffix(".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(active, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            self.log.error("active models not saved (%s): a reboot flies the boot models", exc)

    def on_init(self) -> None:
        if self._root is None or self.payload is None:
            return
        try:
            active = json.loads((self._root / ACTIVE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for variant, rel in active.items() if isinstance(active, dict) else ():
            if variant in VARIANTS and isinstance(rel, str):
                reason = self._activate(variant, rel)
                if reason:
                    self.event("MODEL_REFUSED", clip(rel, 120), clip(reason, 120))

    def _refuse(self, path: str, reason: str) -> None:
        self.event("MODEL_REFUSED", clip(path, 120), clip(reason, 120))
        raise CommandFailed(FailureCode.VALUE_REJECTED, clip(reason, 120))

    @command(
        args=(Arg("variant", "str", max_len=8, description="small or large"),),
        description="Fly again the model MODEL_ACTIVATE replaced.",
        opcode=4,
    )
    def model_rollback(self, variant: str) -> None:
        if variant not in self._previous or self.payload is None:
            raise CommandFailed(FailureCode.NOT_FOUND, f"no earlier {variant} model to go back to")
        previous: Runtime | None = self._previous.pop(variant)
        current = self.payload.swap_model(variant, previous)
        if self.scrubber is not None:
            self.scrubber.replace_model(current, previous)
        self._save_active(variant, None)
        self.event("MODEL_ROLLED_BACK", variant, previous.name if previous else "none")


__all__ = ["CFDP_APID", "MAX_CONTACT_GAP_S", "Cfdp", "ProductSource"]
