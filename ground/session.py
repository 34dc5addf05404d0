"""The ground session: the whole ground segment as a state machine, with no I/O.

No threads, no sockets, no clock: bytes and the time ``now_s`` (any monotonic seconds,
e.g. simulated) go in, bytes and records come out. The SITL runner drives it on a
simulated clock; :class:`~ground.station.GroundStation` drives it from a real link.

>>> from fsw.ccsds import TEST_KEY_FILE, LinkConfig, SpacecraftLink
>>> from ground.dictionary import minimal_dictionary
>>> cfg = LinkConfig.load(TEST_KEY_FILE)
>>> s = GroundSession(minimal_dictionary(), cfg)
>>> handle, cltus = s.send("PING", 0.0)
>>> SpacecraftLink(cfg).receive(b"".join(cltus))[0] == handle.tc
True
>>> s.send("demo.HEAT", 0.0, power_w=7.5, mode="AUTO")
Traceback (most recent call last):
...
ground.errors.CommandValidationError: demo.HEAT: power_w 7.5 above max 5 (units W)
"""

from __future__ import annotations

import fnmatch
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from fsw.ccsds import CcsdsError, FopState, GroundLink, InitMode, LinkConfig, PusTc
from fsw.ccsds.pus import ACK_ALL
from ground.archive import Archive
from ground.codec import TmDecoder, encode_command_args
from ground.dictionary import CommandDef, Dictionary, HkLayout, LimitState
from ground.errors import ArchiveError, CommandValidationError, GroundError, StationError
from ground.records import ChannelValue, Decoded, EventRecord
from ground.tracker import CommandHandle, CommandTimeouts, CommandTracker, Stage, StageRecord

log = logging.getLogger(__name__)

IDLE_APID = 0x7FF
StageListener = Callable[[CommandHandle, StageRecord], None]
DecodedListener = Callable[[Decoded], None]


def as_dictionary(dictionary: Dictionary | Mapping[str, Any] | str | Path) -> Dictionary:
    """A :class:`Dictionary` from itself, its parsed JSON, or a file path."""
    if isinstance(dictionary, Dictionary):
        return dictionary
    if isinstance(dictionary, str | Path):
        return Dictionary.load(dictionary)
    return Dictionary(dictionary)


def _hash32(content_hash: str) -> int:
    """First 32 bits of a ``sha256:...`` content hash (what the flight's exec.dict_hash holds)."""
    digest = content_hash.removeprefix("sha256:")
    try:
        return int(digest[:8], 16)
    except ValueError:
        return 0


class TelemetryTable:
    """The latest value of every telemetry channel, with its limit state.

    >>> from ground.dictionary import minimal_dictionary
    >>> t = TelemetryTable(Dictionary(minimal_dictionary()))
    >>> t.update(("demo.temp_c",), (55.0,), 1000.0)
    >>> t.get("demo.temp_c").limit.value, t.value("demo.temp_c")
    ('red_high', 55.0)
    """

    def __init__(self, dictionary: Dictionary) -> None:
        self._d = dictionary
        self._values: dict[str, Any] = {}
        self._times: dict[str, float] = {}
        self._stamps: dict[str, int] = {}
        self.reports = 0

    def update(self, names: Sequence[str], values: Sequence[Any], t_tai: float) -> None:
        """Record one report's values (all taken at ``t_tai``)."""
        self.reports += 1
        self._values.update(zip(names, values, strict=True))
        self._times.update(dict.fromkeys(names, t_tai))
        self._stamps.update(dict.fromkeys(names, self.reports))

    def get(self, name: str) -> ChannelValue | None:
        """The latest value of ``name`` (None if none arrived yet)."""
        if name not in self._values:
            return None
        value = self._values[name]
        ch = self._d.channels.get(name)
        limit = ch.limits.state(value) if ch else LimitState.OK
        if ch is not None and ch.problem(value) is not None:
            limit = LimitState.INVALID  # flagged: not data (see ChannelDef.problem)
        return ChannelValue(name, value, self._times[name], limit, ch.units if ch else "")

    def value(self, name: str) -> Any:
        """The latest value of ``name``; :class:`GroundError` if there is none yet."""
        if name not in self._values:
            self._d.channel(name)  # unknown names get a did-you-mean
            raise GroundError(f"no value of {name} received yet")
        return self._values[name]

    def stamp(self, name: str) -> int:
        """Report counter at the last update of ``name`` (0: never)."""
        return self._stamps.get(name, 0)

    def values(self, pattern: str | None = None) -> list[ChannelValue]:
        """Latest values, sorted by name; ``pattern`` is a glob or a substring."""
        names = sorted(self._values)
        if pattern:
            glob = any(c in pattern for c in "*?[")
            names = [
                n for n in names if (fnmatch.fnmatchcase(n, pattern) if glob else pattern in n)
            ]
        return [v for n in names if (v := self.get(n)) is not None]

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return name in self._values


def _peek(raw: bytes) -> tuple[int, int, int, int]:
    """(apid, seq count, service, subservice) of a packet, zeros where it is too short."""
    apid = ((raw[0] & 7) << 8 | raw[1]) if len(raw) >= 2 else 0
    seq = ((raw[2] & 0x3F) << 8 | raw[3]) if len(raw) >= 4 else 0
    service, sub = (raw[7], raw[8]) if len(raw) >= 9 else (0, 0)
    return apid, seq, service, sub


class GroundSession:
    """Commands out, telemetry in, everything tracked; time passed in, no I/O.

    ``link_config`` None makes a packet-level session (no link layer: use
    :meth:`encode_command` and :meth:`receive_packets`, e.g. to replay an archive);
    with ``packet_uplink`` too, the ``send_*`` methods hand back the TC packets
    themselves for another process to frame (a guest of a shared link,
    :mod:`ground.relay`). With ``auto_resume`` the session restarts COP-1 (with an
    Unlock) after an alert instead of refusing to send.

    ``sequence`` hands out TC packet sequence counts (default: this session counts from
    ``first_seq``); the request id of a command is its packet id and sequence count, so
    a ground that restarts must carry on counting (:class:`ground.station.StationState`).
    """

    def __init__(
        self,
        dictionary: Dictionary | Mapping[str, Any] | str | Path,
        link_config: LinkConfig | None,
        archive: Archive | None = None,
        *,
        now_s: float = 0.0,
        timeouts: CommandTimeouts | None = None,
        source_id: int = 0,
        event_history: int = 1000,
        auto_resume: bool = True,
        first_seq: int = 0,
        sequence: Callable[[], int] | None = None,
        packet_uplink: bool = False,
    ) -> None:
        self.dictionary = as_dictionary(dictionary)
        self.link = GroundLink(link_config, now_s) if link_config is not None else None
        self.decoder = TmDecoder(self.dictionary)
        self.tracker = CommandTracker(timeouts)
        self.telemetry = TelemetryTable(self.dictionary)
        self.archive = archive
        self.source_id = source_id
        self.auto_resume = auto_resume
        self._events: deque[EventRecord] = deque(maxlen=event_history)
        self._seq = first_seq & 0x3FFF
        self._sequence = sequence
        self.packet_uplink = packet_uplink
        self._next_id = 1
        self._tai_ref: tuple[float, float] | None = None
        self._stage_listeners: list[StageListener] = []
        self._decoded_listeners: list[DecodedListener] = []
        self._errors_logged: set[str] = set()
        self.last_error: str | None = None
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "tc_sent",
                "tm_packets",
                "tm_idle",
                "decoded",
                "decode_errors",
                "unknown_reports",
                "hk_reports",
                "samples",
                "events",
                "verification",
                "replies",
                "fop_resumes",
                "commands_completed",
                "commands_failed",
                "commands_timed_out",
                "dictionary_mismatch",
                "values_flagged",
            ),
            0,
        )
        #: The flight's ``exec.dict_hash`` this dictionary expects (None: it has no such
        #: channel, e.g. a dictionary from another mission).
        self.expected_dict_hash: int | None = (
            _hash32(self.dictionary.content_hash)
            if "exec.dict_hash" in self.dictionary.channels
            else None
        )
        self.flight_dict_hash: int | None = None
        if archive is not None:
            archive.set_dictionary(self.dictionary)

    def _check_dictionary(self, flight_hash: int) -> None:
        """Warn once when the flight was built with another dictionary than ours."""
        first = self.flight_dict_hash != flight_hash
        self.flight_dict_hash = flight_hash
        if flight_hash == self.expected_dict_hash:
            return
        self._counts["dictionary_mismatch"] += 1
        if first:
            log.warning(
                "the spacecraft runs a different dictionary (exec.dict_hash %08x, ours %08x "
                "from %s): commands and telemetry may be misread; export the flight's "
                "dictionary (gnomon dict export) and restart the ground",
                flight_hash,
                self.expected_dict_hash or 0,
                self.dictionary.content_hash[:19],
            )

    # -- listeners ----------------------------------------------------------------------

    def on_stage(self, listener: StageListener) -> None:
        """Call ``listener(handle, stage_record)`` on every stage change."""
        self._stage_listeners.append(listener)

    def on_decoded(self, listener: DecodedListener) -> None:
        """Call ``listener(decoded)`` for every TM packet received."""
        self._decoded_listeners.append(listener)

    # -- views --------------------------------------------------------------------------

    @property
    def commands(self) -> CommandTracker:
        """Every command sent, with its stages."""
        return self.tracker

    @property
    def events(self) -> list[EventRecord]:
        """Recent events, oldest first."""
        return list(self._events)

    @property
    def stats(self) -> dict[str, Any]:
        """Decoder, command and link counters (link ones from :class:`GroundLink`)."""
        out: dict[str, Any] = dict(self._counts)
        out["verification_unmatched"] = self.tracker.unmatched
        out["commands_pending"] = len(self.tracker.pending)
        out["hk_structures"] = len(self.decoder.hk_layouts)
        if self.link is not None:
            out.update(self.link.link_stats)
            out["fop_state"] = self.link.fop_state.name
            clcw = self.link.last_clcw
            out["farm_vr"] = None if clcw is None else clcw.report_value
            out["farm_lockout"] = None if clcw is None else clcw.lockout
        out["last_error"] = self.last_error
        return out

    def spacecraft_tai(self, now_s: float) -> float | None:
        """On-board time now, estimated from the newest TM time stamp (None before any TM)."""
        if self._tai_ref is None:
            return None
        t_tai, at_s = self._tai_ref
        return t_tai + (now_s - at_s)

    # -- commanding ---------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """The sequence count the next command of this session gets (when it counts)."""
        return self._seq

    def take_seq(self) -> int:
        """Hand out the next TC sequence count (14 bits, wrapping)."""
        if self._sequence is not None:
            return self._sequence() & 0x3FFF
        seq = self._seq
        self._seq = (self._seq + 1) & 0x3FFF
        return seq

    def _command_by_type(self, service: int, subservice: int) -> CommandDef | None:
        for cmd in self.dictionary.commands.values():
            if (cmd.service, cmd.subservice) == (service, subservice) and cmd.function_id is None:
                return cmd
        return None

    def _build(
        self, command: str, args: Mapping[str, Any], ack: int = ACK_ALL
    ) -> tuple[bytes, dict[str, Any], int]:
        d = self.dictionary
        cmd = d.command(command)
        data, checked = encode_command_args(d, cmd, args)
        seq = self.take_seq()
        try:
            tc = PusTc(
                apid=d.tc_apid,
                service=cmd.service,
                subservice=cmd.subservice,
                app_data=data,
                seq_count=seq,
                source_id=self.source_id,
                ack_flags=ack,
            ).encode()
        except CcsdsError as exc:
            raise CommandValidationError(cmd.name, f"does not fit in a TC packet: {exc}") from None
        return tc, checked, seq

    def check(self, command: str, /, **args: Any) -> None:
        """Validate a command against the dictionary without sending or numbering it."""
        d = self.dictionary
        encode_command_args(d, d.command(command), args)

    def encode_command(self, command: str, /, **args: Any) -> bytes:
        """A bare, validated PUS TC packet (it uses up a sequence count; not tracked).

        Use it to embed a TC in a stored sequence or a (11,4) time-tagged insert.
        """
        return self._build(command, args)[0]

    def schedule_args(self, release_tai_s: float, *tcs: bytes) -> dict[str, Any]:
        """The arguments of the (11,4) insert command releasing ``tcs`` at ``release_tai_s``.

        >>> from ground.dictionary import minimal_dictionary
        >>> GroundSession(minimal_dictionary(), None).schedule_args(5.0, b"tc")
        Traceback (most recent call last):
        ...
        ground.errors.CommandValidationError: the dictionary has no (11,4) time-tagged ...
        """
        cmd = self._command_by_type(11, 4)
        if cmd is None or len(cmd.args) != 1 or cmd.args[0].type != "array":
            raise CommandValidationError(
                None, "the dictionary has no (11,4) time-tagged insert command"
            )
        items = cmd.args[0].items
        t_field = next((f.name for f in items if f.type == "cuc"), None)
        p_field = next((f.name for f in items if f.type == "packet"), None)
        if t_field is None or p_field is None:
            raise CommandValidationError(cmd.name, "its activities lack a time or a packet")
        return {cmd.args[0].name: [{t_field: release_tai_s, p_field: tc} for tc in tcs]}

    def send(self, command: str, now_s: float, /, **args: Any) -> tuple[CommandHandle, list[bytes]]:
        """Validate, encode and send a command by name; the CLTU bytes to transmit now."""
        return self.send_args(command, args, now_s)

    def send_args(
        self, command: str, args: Mapping[str, Any], now_s: float, *, bypass: bool = False
    ) -> tuple[CommandHandle, list[bytes]]:
        """Like :meth:`send` with the arguments in a mapping; ``bypass`` sends a BD frame."""
        tc, checked, _ = self._build(command, args)
        return self._transmit(
            tc, now_s, self.dictionary.command(command).name, checked, bypass=bypass
        )

    def send_packet(
        self, tc: bytes, now_s: float, *, name: str | None = None, bypass: bool = False
    ) -> tuple[CommandHandle, list[bytes]]:
        """Send a ready-made TC packet as it is (not validated), and track it."""
        if name is None:
            _, _, service, sub = _peek(tc)
            fid = int.from_bytes(tc[11:13], "big") if len(tc) >= 13 else None
            name = next(
                (
                    c.name
                    for c in self.dictionary.commands.values()
                    if (c.service, c.subservice) == (service, sub) and c.function_id in (None, fid)
                ),
                f"TC({service},{sub})",
            )
        return self._transmit(bytes(tc), now_s, name, {}, bypass=bypass)

    def send_time_tagged(
        self, command: str, release_tai_s: float, now_s: float, /, **args: Any
    ) -> tuple[CommandHandle, CommandHandle, list[bytes]]:
        """Send ``command`` inside a (11,4) insert, to run on board at ``release_tai_s``.

        Returns the insert command's handle, the time-tagged command's handle (stage
        ``scheduled`` until its own reports arrive) and the CLTUs.
        """
        tc, checked, seq = self._build(command, args)
        insert_args = self.schedule_args(release_tai_s, tc)
        insert_cmd = self._command_by_type(11, 4)
        assert insert_cmd is not None  # schedule_args checked it
        insert, cltus = self.send_args(insert_cmd.name, insert_args, now_s)
        inner = CommandHandle(
            self._new_id(),
            self.dictionary.command(command).name,
            checked,
            tc,
            request_id=int.from_bytes(tc[:4], "big"),
            seq_count=seq,
            t_sent_s=now_s,
            release_tai=release_tai_s,
            parent=insert,
        )
        self._record_stage(inner, StageRecord(Stage.SCHEDULED, now_s), track=True)
        return insert, inner, cltus

    def _new_id(self) -> int:
        n = self._next_id
        self._next_id += 1
        return n

    def _transmit(
        self, tc: bytes, now_s: float, name: str, args: dict[str, Any], *, bypass: bool
    ) -> tuple[CommandHandle, list[bytes]]:
        cltus: list[bytes] = []
        if self.link is None:
            if not self.packet_uplink:
                raise StationError("this session has no link (link_config=None): it cannot send")
            cltus.append(tc)  # the packet itself: the owner of the link frames it
        else:
            if self.auto_resume and self.link.fop_state is FopState.INITIAL:
                cltus += self._resume(now_s)
            try:
                cltu = self.link.send_tc(tc, bypass=bypass, now_s=now_s)
            except CcsdsError as exc:
                raise StationError(f"cannot send {name}: {exc}") from None
            if cltu:
                cltus.append(cltu)
        seq = ((tc[2] & 0x3F) << 8) | tc[3]
        handle = CommandHandle(
            self._new_id(),
            name,
            args,
            tc,
            request_id=int.from_bytes(tc[:4], "big"),
            seq_count=seq,
            t_sent_s=now_s,
        )
        self._counts["tc_sent"] += 1
        self._record_stage(handle, StageRecord(Stage.SENT, now_s), track=True)
        return handle, cltus

    def _record_stage(
        self, handle: CommandHandle, rec: StageRecord, *, track: bool = False
    ) -> None:
        if track:
            handle.add(rec)
            self.tracker.add(handle)
            if self.archive is not None:
                self.archive.add_command(handle)
        elif self.archive is not None:
            self.archive.add_stage(handle, rec)
        if rec.stage is Stage.COMPLETED:
            self._counts["commands_completed"] += 1
        elif rec.stage is Stage.FAILED:
            self._counts["commands_failed"] += 1
        elif rec.stage is Stage.TIMED_OUT:
            self._counts["commands_timed_out"] += 1
        for fn in self._stage_listeners:
            fn(handle, rec)

    def reconcile(self, now_s: float, history: int = 5000) -> list[CommandHandle]:
        """Take over what an earlier ground process left unfinished in the archive.

        Call it once, when a ground starts on an archive it alone writes to (the station
        does). Every archived command without a final report (the newest ``history``) is
        tracked again, so late reports still attach to it. One that was waiting for a
        report when that process stopped gets a final ``timed_out`` stage now, failure
        code ``GROUND_RESTART``: nobody was listening, so its outcome is unknown. A
        time-tagged command not yet released stays ``scheduled``, with the usual
        timeouts from its release time. Returns the commands that got the stage.
        """
        if self.archive is None:
            return []
        closed: list[CommandHandle] = []
        for rec in self.archive.commands(limit=history, unfinished=True):
            handle = CommandHandle(
                self._new_id(),
                rec.name,
                dict(rec.args),
                b"",
                request_id=rec.request_id,
                seq_count=rec.seq_count,
                t_sent_s=rec.t_sent_s,
                release_tai=rec.release_tai,
            )
            handle.stages.extend(rec.stages)
            handle.archive_id = rec.id
            waiting = handle.status not in (Stage.TIMED_OUT, Stage.COMPLETED, Stage.FAILED)
            timed = handle.release_tai is not None and handle.status in (
                Stage.SCHEDULED,
                Stage.SENT,
                Stage.ACCEPTED,
                Stage.STARTED,
                Stage.PROGRESS,
            )
            self.tracker.adopt(handle, pending=timed)
            if waiting and not timed:
                awaited = "accepted" if handle.status is Stage.SENT else "completed"
                stage = StageRecord(
                    Stage.TIMED_OUT,
                    now_s,
                    None,
                    "GROUND_RESTART",
                    f"{handle.status.value} when the ground process that sent it stopped; "
                    "outcome unknown (a late report will still be recorded)",
                    awaited,
                )
                handle.add(stage)
                self._record_stage(handle, stage)
                closed.append(handle)
        if closed:
            log.warning(
                "%d command(s) were in flight when the last ground process stopped: "
                "marked timed_out (GROUND_RESTART)",
                len(closed),
            )
        return closed

    def initiate(
        self, now_s: float, mode: InitMode = InitMode.WITH_UNLOCK, vr: int | None = None
    ) -> list[bytes]:
        """(Re)start COP-1; Unlock (default) also joins a spacecraft already running.

        Returns the CLTUs to send now. Frames not yet acknowledged are purged.
        """
        if self.link is None:
            raise StationError("this session has no link (link_config=None)")
        return self.link.initiate(now_s, mode, vr)

    def sdls_reset(
        self,
        now_s: float,
        *,
        key_ids: Mapping[int, int] | None = None,
        floors: Mapping[int, int] | None = None,
    ) -> list[bytes]:
        """The CLTU of an SDLS reset under the recovery key, answering the challenge in
        the latest ``comms.sdls_challenge_hi/_lo`` (see :meth:`GroundLink.sa_reset`)."""
        if self.link is None:
            raise StationError("this session has no link (link_config=None)")
        table = self.telemetry
        names = ("comms.sdls_challenge_hi", "comms.sdls_challenge_lo")
        if not all(n in table for n in names):
            raise StationError(
                "no SDLS challenge received yet (comms.sdls_challenge_hi/_lo, in the comms "
                "housekeeping every 10 s): wait for telemetry"
            )
        challenge = b"".join(int(table.value(n)).to_bytes(4, "big") for n in names)
        try:
            return [self.link.sa_reset(challenge, now_s, key_ids=key_ids, floors=floors)]
        except CcsdsError as exc:
            raise StationError(f"cannot build the SDLS reset: {exc}") from None

    def _resume(self, now_s: float) -> list[bytes]:
        assert self.link is not None
        alert = self.link.fop.alert
        self._counts["fop_resumes"] += 1
        self.last_error = f"FOP-1 alert: {alert}; COP-1 restarted with Unlock"
        log.warning("%s", self.last_error)
        return self.initiate(now_s, InitMode.WITH_UNLOCK)

    # -- telemetry ----------------------------------------------------------------------

    def receive(self, downlink: bytes | bytearray | memoryview, now_s: float) -> list[Decoded]:
        """Decode downlink bytes (any chunking): frames, packets, records."""
        if self.link is None:
            raise StationError("this session has no link (link_config=None): use receive_packets()")
        packets = self.link.receive(downlink, now_s) if downlink else []
        return self.receive_packets(packets, now_s)

    def receive_packets(self, packets: Iterable[bytes], now_s: float) -> list[Decoded]:
        """Decode TM space packets (link layer already removed) and route the records."""
        out: list[Decoded] = []
        counts = self._counts
        archive = self.archive
        for raw in packets:
            apid, seq, service, sub = _peek(raw)
            if apid == IDLE_APID:
                counts["tm_idle"] += 1
                continue
            counts["tm_packets"] += 1
            try:
                dec = self.decoder.decode(raw)
            except GroundError as exc:
                counts["decode_errors"] += 1
                self.last_error = f"undecodable TM({service},{sub}): {exc}"
                if str(exc) not in self._errors_logged and len(self._errors_logged) < 100:
                    self._errors_logged.add(str(exc))
                    log.warning("%s", self.last_error)
                dec = Decoded(
                    "unknown",
                    f"TM({service},{sub})",
                    apid,
                    service,
                    sub,
                    seq,
                    0.0,
                    {},
                    bytes(raw),
                    error=str(exc),
                )
                if archive is not None:
                    archive.add_packet(now_s, dec)
                out.append(dec)
                continue
            counts["decoded"] += 1
            if self._tai_ref is None or dec.t_tai >= self._tai_ref[0]:
                self._tai_ref = (dec.t_tai, now_s)
            if archive is not None:
                archive.add_packet(now_s, dec)
            self._route(dec, now_s)
            out.append(dec)
            for fn in self._decoded_listeners:
                fn(dec)
        if archive is not None:
            archive.maybe_flush(now_s)
        return out

    def _route(self, dec: Decoded, now_s: float) -> None:
        counts = self._counts
        kind = dec.kind
        if kind == "hk":
            hk = dec.hk
            assert hk is not None
            counts["hk_reports"] += 1
            counts["samples"] += len(hk.values)
            self.telemetry.update(hk.layout.names, hk.values, dec.t_tai)
            if self.expected_dict_hash is not None and "exec.dict_hash" in hk.layout.names:
                self._check_dictionary(hk.values[hk.layout.names.index("exec.dict_hash")])
            bad = hk.layout.problems(hk.values) if hk.layout.needs_check else None
            if bad:
                self._flag(dec.t_tai, hk.layout, hk.values, bad)
            elif self.archive is not None:
                self.archive.add_samples(dec.t_tai, hk.layout.ids, hk.values)
        elif kind == "event":
            counts["events"] += 1
            if dec.event is not None:
                self._events.append(dec.event)
                if self.archive is not None:
                    self.archive.add_event(now_s, dec.event)
        elif kind == "verification":
            counts["verification"] += 1
            found = self.tracker.on_report(dec, now_s)
            if found is not None:
                handle, rec = found
                self._record_stage(handle, rec)
                if rec.stage is Stage.COMPLETED:
                    self._learn_from_command(handle)
        elif kind == "unknown":
            counts["unknown_reports"] += 1
        else:
            counts["replies"] += 1
            self._learn_from_reply(dec)

    def _flag(
        self,
        t_tai: float,
        layout: HkLayout,
        values: tuple[Any, ...],
        bad: list[tuple[int, str]],
    ) -> None:
        """Count the values of a report that are not data and keep them out of the samples
        (archived apart, with the reason); the others are archived as usual."""
        self._counts["values_flagged"] += len(bad)
        first = f"{layout.names[bad[0][0]]}={values[bad[0][0]]!r}: {bad[0][1]}"
        self.last_error = f"flagged telemetry {first}"
        if first not in self._errors_logged and len(self._errors_logged) < 100:
            self._errors_logged.add(first)
            log.warning("%s (kept out of the samples; counted in values_flagged)", self.last_error)
        if self.archive is None:
            return
        skip = {i for i, _ in bad}
        for i, why in bad:
            self.archive.add_flagged(t_tai, layout.ids[i], values[i], why)
        keep = [i for i in range(len(values)) if i not in skip]
        if keep:
            self.archive.add_samples(
                t_tai, tuple(layout.ids[i] for i in keep), tuple(values[i] for i in keep)
            )

    def _learn_from_command(self, handle: CommandHandle) -> None:
        """A completed HK create (3,1) defines a structure the decoder must know."""
        cmd = self.dictionary.commands.get(handle.name)
        if cmd is None or (cmd.service, cmd.subservice) != (3, 1):
            return
        self._define_hk(handle.args)

    def _learn_from_reply(self, dec: Decoded) -> None:
        if (dec.service, dec.subservice) == (3, 10):
            self._define_hk(dec.fields)

    def _define_hk(self, fields: Mapping[str, Any]) -> None:
        sid = fields.get("sid")
        items = fields.get("channel_ids")
        if not isinstance(sid, int) or not isinstance(items, list):
            return
        ids = [next(iter(i.values())) if isinstance(i, dict) else i for i in items]
        try:
            self.decoder.define_hk(sid, [int(c) for c in ids])
        except GroundError as exc:
            self.last_error = str(exc)
            log.warning("cannot learn HK structure %s: %s", sid, exc)

    # -- time ---------------------------------------------------------------------------

    def poll(self, now_s: float) -> list[bytes]:
        """Housekeeping of the ground: COP-1 retransmissions and restarts, stage timeouts,
        archive flushes. Returns the CLTUs to transmit now."""
        cltus: list[bytes] = []
        if self.link is not None:
            if self.auto_resume and self.link.fop_state is FopState.INITIAL:
                cltus += self._resume(now_s)
            cltus += self.link.poll(now_s)
        for handle, rec in self.tracker.check_timeouts(now_s, self.spacecraft_tai(now_s)):
            self._record_stage(handle, rec)
        if self.archive is not None:
            self.archive.maybe_flush(now_s)
        return cltus


def replay_archive(
    source: Archive, dictionary: Dictionary | None = None, into: Archive | None = None
) -> Iterator[Decoded]:
    """Decode every packet archived in ``source`` again, in a packet-level session.

    ``dictionary`` defaults to the one stored in the archive. With ``into``, the decoded
    samples, events and packets are written to that archive (e.g. after fixing a
    dictionary). Yields what each packet decodes to.

    >>> from fsw.ccsds import PusTm
    >>> from ground.dictionary import minimal_dictionary
    >>> arch = Archive(":memory:")
    >>> live = GroundSession(minimal_dictionary(), None, archive=arch)
    >>> hk = PusTm(apid=102, service=3, subservice=25,
    ...            app_data=bytes.fromhex("0001" "41c80000" "01" "00000007")).encode()
    >>> _ = live.receive_packets([hk], 5.0)
    >>> arch.flush()
    >>> [dec.fields["values"]["demo.count"] for dec in replay_archive(arch)]
    [7]
    """
    d = dictionary or source.dictionary()
    if d is None:
        raise ArchiveError(f"{source.path} stores no dictionary; pass one to replay it")
    session = GroundSession(d, None, archive=into)
    for pkt in source.packets():
        yield from session.receive_packets([pkt.raw], pkt.t_ground_s)
    if into is not None:
        into.flush()


__all__ = ["GroundSession", "TelemetryTable", "as_dictionary", "replay_archive"]
