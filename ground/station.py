"""The ground station: a :class:`~ground.session.GroundSession` on a real link.

It opens ``open_link(url, role="ground")``, joins the spacecraft's COP-1 with an Unlock
(so it works whether the spacecraft just booted or has been flying for hours), and runs
one receive thread that feeds the downlink to the session, sends what COP-1 wants
retransmitted and checks stage timeouts. Its clock is the host's: monotonic, expressed
in Unix seconds (so archived ground times are readable dates).

Two numbers must keep increasing across ground restarts: the SDLS anti-replay sequence
number (or the spacecraft refuses every command as a replay) and the TC packet sequence
count (or request ids repeat, and a ``SCHED_DELETE`` by request id or a verification
report cannot tell two commands apart). Give ``arsn_file`` (the CLI uses
``~/.gnomon/sdls-arsn-scid<spacecraft id>.json``) to carry both over; with an archive the
count also carries on from the commands archived there. Both are written before the
command leaves, so a ground killed right after sending never reuses them. On an archive,
:meth:`GroundStation.start` also reconciles the commands an earlier ground process left
in flight (:meth:`~ground.session.GroundSession.reconcile`).

With ``share_dir`` (the CLI uses ``~/.gnomon``), ground processes of this host share a
link instead of fighting over it: the first owns it, later ones are its guests
(:mod:`ground.relay`).

>>> from fsw.ccsds import TEST_KEY_FILE, LinkConfig
>>> from ground.dictionary import minimal_dictionary
>>> with GroundStation(minimal_dictionary(), LinkConfig.load(TEST_KEY_FILE), "loop://") as st:
...     handle = st.send("PING")
...     handle.status.value
'sent'
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from fsw.ccsds import LinkConfig
from fsw.link import BaseTransport, LinkError, open_link
from ground.archive import Archive
from ground.dictionary import Dictionary
from ground.errors import GroundError, StationError
from ground.records import EventRecord
from ground.relay import LinkClaim, RelayClient, RelayServer
from ground.session import DecodedListener, GroundSession, StageListener, TelemetryTable
from ground.tracker import CommandHandle, CommandTimeouts, CommandTracker, Stage

log = logging.getLogger(__name__)


class StationState:
    """The station's numbering between runs: the last SDLS sequence number used per SPI
    and the next TC packet sequence count (JSON, replaced atomically, fsynced)."""

    def __init__(self, path: str | Path, spacecraft_id: int) -> None:
        self.path = Path(path).expanduser()
        self.spacecraft_id = spacecraft_id
        self._saved: dict[str, Any] = {}
        #: Unix time of the last save read from the file (None: no count stored).
        self.saved_unix: float | None = None

    def _read(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StationError(f"cannot read the station state file {self.path}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("spacecraft_id") != self.spacecraft_id:
            return {}
        return doc

    def load(self) -> dict[int, int]:
        """SPI -> last ARSN used (empty if the file is missing or for another spacecraft)."""
        doc = self._read()
        try:
            arsn = {int(k): int(v) for k, v in doc.get("arsn", {}).items()}
            seq = doc.get("tc_seq")
            saved = doc.get("saved_unix")
            self._saved = {"arsn": arsn, "tc_seq": None if seq is None else int(seq) & 0x3FFF}
            self.saved_unix = None if saved is None or seq is None else float(saved)
        except (TypeError, ValueError, AttributeError):
            raise StationError(f"station state file {self.path} is malformed") from None
        return dict(arsn)

    @property
    def next_seq(self) -> int | None:
        """The TC sequence count stored by :meth:`save` (after :meth:`load`; None: none)."""
        seq = self._saved.get("tc_seq")
        return seq if isinstance(seq, int) else None

    def save(self, arsn: Mapping[int, int], next_seq: int | None = None) -> None:
        """Write the numbers if they changed (``next_seq`` None keeps the stored one)."""
        seq = self.next_seq if next_seq is None else next_seq & 0x3FFF
        state = {"arsn": dict(arsn), "tc_seq": seq}
        if state == self._saved:
            return
        now = time.time()
        doc = {
            "spacecraft_id": self.spacecraft_id,
            "arsn": {str(k): v for k, v in arsn.items()},
            "tc_seq": seq,
            "saved_unix": round(now, 3),
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise StationError(
                f"cannot save the station state file {self.path}: {exc.strerror or exc}"
            ) from None
        self._saved = state
        self.saved_unix = now


#: The name this class had when it kept the SDLS numbers alone.
ArsnStore = StationState


def resume_seq(archive: Archive | None, stored: int | None, stored_unix: float | None) -> int:
    """The TC sequence count to carry on from: the newer of the state file's and the one
    after the commands in the archive (0 when neither has one).

    The archive gives the count after its newest commands (a time-tagged command is
    numbered before the insert that carries it, so the few newest are looked at).
    """
    recent = archive.commands(limit=8) if archive is not None else []
    from_archive: int | None = None
    archive_unix: float | None = None
    if recent and archive is not None and archive.ground_clock == "unix":
        base = recent[-1].seq_count
        ahead = max(
            ((r.seq_count - base) & 0x3FFF)
            for r in recent
            if ((r.seq_count - base) & 0x3FFF) < 0x2000
        )
        from_archive = (base + ahead + 1) & 0x3FFF
        archive_unix = max(r.t_sent_s for r in recent)
    if stored is None:
        return from_archive or 0
    if from_archive is None or (stored_unix or 0.0) >= (archive_unix or 0.0):
        return stored
    return from_archive


class GroundStation:
    """A ground station: link, receive thread, session. Use as a context manager.

    ``transport`` (instead of ``url``) uses an already open transport, e.g. one end of
    :func:`fsw.link.memory_pair`. ``arsn_file`` keeps the station's numbering between
    runs (:class:`StationState`). ``share_dir``: find the other ground processes of this
    host on the same URL there; the first owns the link, later ones are its guests
    (:mod:`ground.relay`; ``is_guest`` tells which). ``program`` names this process to
    the others (e.g. ``gnomon ground console``). All methods are thread-safe.
    """

    def __init__(
        self,
        dictionary: Dictionary | Mapping[str, Any] | str | Path,
        link_config: LinkConfig,
        url: str | None = None,
        archive: Archive | None = None,
        *,
        transport: BaseTransport | None = None,
        timeouts: CommandTimeouts | None = None,
        join: bool = True,
        arsn_file: str | Path | None = None,
        recv_timeout_s: float = 0.05,
        source_id: int = 0,
        share_dir: str | Path | None = None,
        program: str = "",
    ) -> None:
        if transport is None and url is None:
            raise StationError("give a link URL (e.g. udp://127.0.0.1:10025) or a transport")
        self.url = url or (transport.url if transport is not None else "")
        self.program = program
        self._anchor = (time.time(), time.monotonic())
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._claim: LinkClaim | None = None
        self._relay_server: RelayServer | None = None
        self._relay: RelayClient | None = None
        scid = link_config.spacecraft_id
        if transport is None and share_dir is not None:
            claim = LinkClaim(share_dir, self.url)
            if claim.acquire():
                self._claim = claim
            else:
                owner = claim.read_owner()
                self._relay = RelayClient(owner, url=self.url, spacecraft_id=scid, program=program)
        if transport is None and self._relay is None:
            assert url is not None
            try:
                transport = open_link(url, role="ground")
            except LinkError as exc:
                if self._claim is not None:
                    self._claim.release()
                raise StationError(str(exc)) from None
        self.transport = transport
        try:
            self.session = self._session(
                dictionary, link_config, archive, arsn_file, timeouts, source_id
            )
        except BaseException:  # a bad dictionary or state file: leave nothing held
            self._release()
            raise
        self.archive = archive
        self._join = join
        self._recv_timeout_s = recv_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_rx_s: float | None = None
        self._thread_error: str | None = None

    def _session(
        self,
        dictionary: Dictionary | Mapping[str, Any] | str | Path,
        link_config: LinkConfig,
        archive: Archive | None,
        arsn_file: str | Path | None,
        timeouts: CommandTimeouts | None,
        source_id: int,
    ) -> GroundSession:
        """The session: numbering carried on (owner), or taken from the owner (guest)."""
        guest = self._relay is not None
        state = StationState(arsn_file, link_config.spacecraft_id) if arsn_file else None
        self._state = None if guest else state
        arsns = self._state.load() if self._state is not None else {}
        first_seq = 0
        if not guest:
            stored = self._state.next_seq if self._state is not None else None
            first_seq = resume_seq(archive, stored, self._state.saved_unix if self._state else None)
        session = GroundSession(
            dictionary,
            None if guest else link_config,
            archive,
            now_s=self.now(),
            timeouts=timeouts,
            source_id=source_id,
            first_seq=first_seq,
            sequence=self._relay.next_seq if self._relay is not None else None,
            packet_uplink=guest,
        )
        if session.link is not None:
            session.link.resume_arsns(arsns)
        return session

    def _release(self) -> None:
        """Let go of the transport, the relay and the claim on the link."""
        if self.transport is not None:
            with contextlib.suppress(LinkError):
                self.transport.close()
        if self._relay is not None:
            self._relay.close()
        if self._claim is not None:
            self._claim.release()

    @property
    def is_guest(self) -> bool:
        """True when another ground process owns the link and this one goes through it."""
        return self._relay is not None

    # -- lifetime -----------------------------------------------------------------------

    def now(self) -> float:
        """The station's time: monotonic, in Unix seconds."""
        return self._anchor[0] + (time.monotonic() - self._anchor[1])

    def start(self) -> GroundStation:
        """Join COP-1 (Unlock), reconcile the archive, serve guests, start the receive
        thread (idempotent). A guest only starts its thread."""
        with self._lock:
            if self._thread is not None:
                return self
            if self._relay is None:
                if self._join:
                    self._transmit(self.session.initiate(self.now()))
                self.session.reconcile(self.now())
            if self._claim is not None:
                self._relay_server = RelayServer(
                    self.url,
                    self.session.link.config.spacecraft_id if self.session.link else 0,
                    self._relay_seq,
                    self._relay_send,
                    self.program,
                )
                self._relay_server.start()
                self._claim.publish(self._relay_server.info())
            self._thread = threading.Thread(
                target=self._run, name=f"ground-rx {self.url}", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread, flush the archive, close the link (the archive stays open);
        guests are told, and the claim on the link goes."""
        self._stop.set()
        if self._relay_server is not None:
            self._relay_server.close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        with self._lock:
            self._save_state()
            if self.archive is not None:
                with contextlib.suppress(GroundError):
                    self.archive.flush()
            self._release()
            self._cond.notify_all()

    def __enter__(self) -> GroundStation:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _receive(self) -> tuple[bytes, list[bytes]]:
        """Downlink bytes (owner) or relayed TM packets (guest), waiting a little."""
        if self._relay is not None:
            packets = self._relay.recv_packets(self._recv_timeout_s)
            if self._relay.closed_reason is not None and self._thread_error is None:
                self._thread_error = self._relay.closed_reason
            return b"", packets
        assert self.transport is not None
        return self.transport.recv(self._recv_timeout_s), []

    def _run(self) -> None:
        session = self.session
        while not self._stop.is_set():
            try:
                data, packets = self._receive()
            except LinkError as exc:
                if self._stop.is_set():
                    return
                self._thread_error = str(exc)
                log.warning("ground link receive failed: %s", exc)
                self._stop.wait(0.2)
                continue
            with self._cond:
                now = self.now()
                try:
                    if data or packets:
                        self._last_rx_s = now
                    decoded = session.receive(data, now) if data else []
                    if packets:
                        session.receive_packets(packets, now)
                    if self._relay_server is not None and decoded:
                        self._relay_server.broadcast([d.raw for d in decoded])
                    self._transmit(session.poll(now))
                except GroundError as exc:  # e.g. the archive disk is full
                    self._thread_error = str(exc)
                    log.error("ground receive loop: %s", exc)
                except Exception as exc:  # a bug must not silence the ground for good
                    self._thread_error = f"internal error: {exc!r}"
                    log.exception("ground receive loop failed; carrying on")
                self._cond.notify_all()

    def _transmit(self, units: list[bytes], *, bypass: bool = False) -> None:
        """Send CLTUs on the link (owner), or TC packets through the owner (guest)."""
        if self._relay is not None:
            for tc in units:
                self._relay.send_tc(tc, bypass)
            return
        assert self.transport is not None
        for cltu in units:
            try:
                self.transport.send(cltu)
            except LinkError as exc:
                raise StationError(f"cannot transmit on {self.url}: {exc}") from None

    def _save_state(self) -> None:
        if self._state is None or self.session.link is None:
            return
        try:
            self._state.save(self.session.link.arsns(), self.session.next_seq)
        except StationError as exc:
            log.warning("%s", exc)

    def _relay_seq(self) -> int:
        """A sequence count for a guest (numbered by us, so request ids stay unique)."""
        with self._cond:
            seq = self.session.take_seq()
            self._save_state()
            return seq

    def _relay_send(self, tc: bytes, bypass: bool) -> None:
        """A guest's TC: tracked and archived here too, sent through our COP-1."""
        self.send_packet(tc, bypass=bypass)

    # -- commanding ---------------------------------------------------------------------

    def send(self, command: str, /, **args: Any) -> CommandHandle:
        """Validate and send a command by name; returns its handle at stage ``sent``."""
        return self.send_args(command, args)

    def send_args(
        self, command: str, args: Mapping[str, Any], *, bypass: bool = False
    ) -> CommandHandle:
        """Like :meth:`send` with arguments in a mapping (``bypass``: expedited BD frame)."""
        with self._cond:
            handle, cltus = self.session.send_args(command, args, self.now(), bypass=bypass)
            self._save_state()  # numbers on disk before they leave
            self._transmit(cltus, bypass=bypass)
            return handle

    def send_packet(
        self, tc: bytes, *, name: str | None = None, bypass: bool = False
    ) -> CommandHandle:
        """Send a ready-made TC packet unchecked (e.g. a deliberately bad one), tracked."""
        with self._cond:
            handle, cltus = self.session.send_packet(tc, self.now(), name=name, bypass=bypass)
            self._save_state()
            self._transmit(cltus, bypass=bypass)
            return handle

    def send_time_tagged(
        self, command: str, release_tai_s: float, /, **args: Any
    ) -> tuple[CommandHandle, CommandHandle]:
        """Send ``command`` to run on board at ``release_tai_s``: (insert, command) handles."""
        with self._cond:
            insert, inner, cltus = self.session.send_time_tagged(
                command, release_tai_s, self.now(), **args
            )
            self._save_state()
            self._transmit(cltus)
            return insert, inner

    def sdls_reset(
        self,
        timeout_s: float,
        *,
        key_ids: Mapping[int, int] | None = None,
        floors: Mapping[int, int] | None = None,
    ) -> dict[str, Any]:
        """Run the SDLS reset (docs/ccsds.md, "After a lost state"): wait for the
        spacecraft's challenge in telemetry, send the reset under the recovery key, wait
        until ``comms.sdls_resets`` says it was done. The summary; :class:`StationError`
        when it did not happen (no telemetry, refused, or no confirmation in time)."""
        table = self.session.telemetry
        counters = ("comms.sdls_resets", "comms.sdls_resets_refused")
        needed = ("comms.sdls_challenge_hi", "comms.sdls_challenge_lo", *counters)
        if not self.wait_for(lambda: all(n in table for n in needed), timeout_s):
            raise StationError(
                f"no comms housekeeping with the SDLS challenge heard in {timeout_s:g} s: is "
                "the spacecraft in contact?"
            )
        with self._cond:
            done0, refused0 = (int(table.value(n)) for n in counters)
            was_locked = bool(table.value("comms.sdls_locked"))
            self._transmit(self.session.sdls_reset(self.now(), key_ids=key_ids, floors=floors))
            self._save_state()

        def answered() -> bool:
            done, refused = (int(table.value(n)) for n in counters)
            return done > done0 or refused > refused0

        self.wait_for(answered, timeout_s)
        with self._lock:
            if int(table.value(counters[0])) <= done0:
                if int(table.value(counters[1])) > refused0:
                    why = [
                        e.message
                        for e in self.session.events
                        if e.name == "comms.SDLS_RESET_REFUSED"
                    ]
                    raise StationError(
                        "the spacecraft refused the SDLS reset" + (f": {why[-1]}" if why else "")
                    )
                raise StationError(
                    f"the spacecraft did not confirm the SDLS reset in {timeout_s:g} s"
                )
            link = self.session.link
            assert link is not None
            return {
                "reset": True,
                "was_locked": was_locked,
                "farm_vr": link.fop.vs,
                "sas": [
                    {"spi": spi, "key_id": kid, "floor": link.arsns()[spi]}
                    for spi, kid in sorted(link.key_ids().items())
                ],
            }

    def check(self, command: str, /, **args: Any) -> None:
        """Validate a command without sending it (raises CommandValidationError)."""
        with self._lock:
            self.session.check(command, **args)

    # -- waiting ------------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until ``predicate()`` (checked after each downlink batch) or the timeout."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout=max(0.0, timeout_s))

    def await_stage(self, handle: CommandHandle, stage: Stage | str, timeout_s: float) -> bool:
        """Wait until ``handle`` reaches ``stage``, fails, or times out; True if reached."""
        stage = Stage.parse(stage)
        self.wait_for(
            lambda: (
                handle.reached(stage)
                or handle.failed
                or (handle.timed_out and handle.status is Stage.TIMED_OUT)
            ),
            timeout_s,
        )
        return handle.reached(stage)

    def on_decoded(self, listener: DecodedListener) -> None:
        """Call ``listener(decoded)`` (in the receive thread) for every TM packet."""
        with self._lock:
            self.session.on_decoded(listener)

    def on_stage(self, listener: StageListener) -> None:
        """Call ``listener(handle, stage)`` (in the receive or sending thread) on stage changes."""
        with self._lock:
            self.session.on_stage(listener)

    # -- views --------------------------------------------------------------------------

    @property
    def dictionary(self) -> Dictionary:
        """The dictionary in use."""
        return self.session.dictionary

    @property
    def telemetry(self) -> TelemetryTable:
        """Latest telemetry values (read-only use)."""
        return self.session.telemetry

    @property
    def events(self) -> list[EventRecord]:
        """Recent events, oldest first."""
        with self._lock:
            return self.session.events

    @property
    def commands(self) -> CommandTracker:
        """Command history with stages."""
        return self.session.commands

    def spacecraft_tai(self) -> float | None:
        """On-board time now, estimated from the downlink (None before any TM)."""
        with self._lock:
            return self.session.spacecraft_tai(self.now())

    @property
    def stats(self) -> dict[str, Any]:
        """Session, link and transport counters, plus link status and silence."""
        with self._lock:
            out = self.session.stats
            if self._relay is not None:  # a guest: the owner runs the link
                out.update({f"relay_{k}": v for k, v in self._relay.stats.items()})
                out["transport_status"] = self._relay.status
                out["fop_state"] = f"via {self._relay.owner_text}"
                out["farm_vr"] = None
                out["link_owner"] = self._relay.owner_text
            else:
                assert self.transport is not None
                out.update({f"transport_{k}": v for k, v in self.transport.stats.items()})
                out["transport_status"] = self.transport.status
                if self._relay_server is not None:
                    out.update({f"relay_{k}": v for k, v in self._relay_server.stats.items()})
                    out["relay_guests_now"] = self._relay_server.guests
            out["last_tm_age_s"] = (
                None if self._last_rx_s is None else round(self.now() - self._last_rx_s, 3)
            )
            out["receive_error"] = self._thread_error
            return out

    @property
    def in_contact(self) -> bool:
        """True when downlink arrived in the last 5 seconds."""
        return self._last_rx_s is not None and self.now() - self._last_rx_s < 5.0


__all__ = ["ArsnStore", "GroundStation", "StationState", "resume_seq"]
