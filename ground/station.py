"""The ground station: a :class:`~ground.session.GroundSession` on a real link.

It opens ``open_link(url, role="ground")``, joins the spacecraft's COP-1 with an Unlock
(so it works whether the spacecraft just booted or has been flying for hours), and runs
one receive thread that feeds the downlink to the session, sends what COP-1 wants
retransmitted and checks stage timeouts. Its clock is the host's: monotonic, expressed
in Unix seconds (so archived ground times are readable dates).

The SDLS anti-replay sequence number must keep increasing across ground restarts, or the
spacecraft refuses every command as a replay; give ``arsn_file`` (the CLI uses
``~/.gnomon/sdls-arsn-<spacecraft id>.json``) to carry it over.

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
from ground.session import DecodedListener, GroundSession, StageListener, TelemetryTable
from ground.tracker import CommandHandle, CommandTimeouts, CommandTracker, Stage

log = logging.getLogger(__name__)


class ArsnStore:
    """Persists the last SDLS sequence number used per SPI (JSON, replaced atomically)."""

    def __init__(self, path: str | Path, spacecraft_id: int) -> None:
        self.path = Path(path).expanduser()
        self.spacecraft_id = spacecraft_id
        self._saved: dict[int, int] = {}

    def load(self) -> dict[int, int]:
        """SPI -> last ARSN used (empty if the file is missing or for another spacecraft)."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise StationError(f"cannot read SDLS sequence file {self.path}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("spacecraft_id") != self.spacecraft_id:
            return {}
        try:
            self._saved = {int(k): int(v) for k, v in doc.get("arsn", {}).items()}
        except (TypeError, ValueError, AttributeError):
            raise StationError(f"SDLS sequence file {self.path} is malformed") from None
        return dict(self._saved)

    def save(self, arsn: Mapping[int, int]) -> None:
        """Write ``arsn`` if it changed."""
        if dict(arsn) == self._saved:
            return
        doc = {"spacecraft_id": self.spacecraft_id, "arsn": {str(k): v for k, v in arsn.items()}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".arsn-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise StationError(
                f"cannot save SDLS sequence file {self.path}: {exc.strerror or exc}"
            ) from None
        self._saved = dict(arsn)


class GroundStation:
    """A ground station: link, receive thread, session. Use as a context manager.

    ``transport`` (instead of ``url``) uses an already open transport, e.g. one end of
    :func:`fsw.link.memory_pair`. All methods are thread-safe.
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
    ) -> None:
        if transport is None:
            if url is None:
                raise StationError("give a link URL (e.g. udp://127.0.0.1:10025) or a transport")
            try:
                transport = open_link(url, role="ground", tm_frame_len=link_config.tm_frame_len)
            except LinkError as exc:
                raise StationError(str(exc)) from None
        self.transport = transport
        self.url = url or transport.url
        self._anchor = (time.time(), time.monotonic())
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self.session = GroundSession(
            dictionary,
            link_config,
            archive,
            now_s=self.now(),
            timeouts=timeouts,
            source_id=source_id,
        )
        self.archive = archive
        self._join = join
        self._recv_timeout_s = recv_timeout_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_rx_s: float | None = None
        self._thread_error: str | None = None
        self._arsn = ArsnStore(arsn_file, link_config.spacecraft_id) if arsn_file else None
        if self._arsn is not None and self.session.link is not None:
            self.session.link.resume_arsns(self._arsn.load())

    # -- lifetime -----------------------------------------------------------------------

    def now(self) -> float:
        """The station's time: monotonic, in Unix seconds."""
        return self._anchor[0] + (time.monotonic() - self._anchor[1])

    def start(self) -> GroundStation:
        """Join COP-1 (Unlock) and start the receive thread (idempotent)."""
        with self._lock:
            if self._thread is not None:
                return self
            if self._join:
                self._transmit(self.session.initiate(self.now()))
            self._thread = threading.Thread(
                target=self._run, name=f"ground-rx {self.url}", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop the thread, flush the archive, close the link (the archive stays open)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        with self._lock:
            self._save_arsn()
            if self.archive is not None:
                with contextlib.suppress(GroundError):
                    self.archive.flush()
            with contextlib.suppress(LinkError):
                self.transport.close()
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

    def _run(self) -> None:
        session = self.session
        while not self._stop.is_set():
            try:
                data = self.transport.recv(self._recv_timeout_s)
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
                    if data:
                        self._last_rx_s = now
                        session.receive(data, now)
                    self._transmit(session.poll(now))
                except GroundError as exc:  # e.g. the archive disk is full
                    self._thread_error = str(exc)
                    log.error("ground receive loop: %s", exc)
                except Exception as exc:  # a bug must not silence the ground for good
                    self._thread_error = f"internal error: {exc!r}"
                    log.exception("ground receive loop failed; carrying on")
                self._cond.notify_all()

    def _transmit(self, cltus: list[bytes]) -> None:
        for cltu in cltus:
            try:
                self.transport.send(cltu)
            except LinkError as exc:
                raise StationError(f"cannot transmit on {self.url}: {exc}") from None

    def _save_arsn(self) -> None:
        if self._arsn is None or self.session.link is None:
            return
        try:
            self._arsn.save(self.session.link.arsns())
        except StationError as exc:
            log.warning("%s", exc)

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
            self._transmit(cltus)
            self._save_arsn()
            return handle

    def send_packet(
        self, tc: bytes, *, name: str | None = None, bypass: bool = False
    ) -> CommandHandle:
        """Send a ready-made TC packet unchecked (e.g. a deliberately bad one), tracked."""
        with self._cond:
            handle, cltus = self.session.send_packet(tc, self.now(), name=name, bypass=bypass)
            self._transmit(cltus)
            self._save_arsn()
            return handle

    def send_time_tagged(
        self, command: str, release_tai_s: float, /, **args: Any
    ) -> tuple[CommandHandle, CommandHandle]:
        """Send ``command`` to run on board at ``release_tai_s``: (insert, command) handles."""
        with self._cond:
            insert, inner, cltus = self.session.send_time_tagged(
                command, release_tai_s, self.now(), **args
            )
            self._transmit(cltus)
            self._save_arsn()
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
            self._save_arsn()

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
            out.update({f"transport_{k}": v for k, v in self.transport.stats.items()})
            out["transport_status"] = self.transport.status
            out["last_tm_age_s"] = (
                None if self._last_rx_s is None else round(self.now() - self._last_rx_s, 3)
            )
            out["receive_error"] = self._thread_error
            return out

    @property
    def in_contact(self) -> bool:
        """True when downlink arrived in the last 5 seconds."""
        return self._last_rx_s is not None and self.now() - self._last_rx_s < 5.0


__all__ = ["ArsnStore", "GroundStation"]
