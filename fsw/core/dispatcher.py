"""The ``cmd`` component: TC acceptance, routing, PUS service 1, 8 and 17.

Every TC goes through the same steps, each reported with PUS-C service 1:

1. acceptance: the packet decodes, its CRC matches, it is for our APID, the command
   exists, its arguments have the right length and range, the mode allows it
   -> (1,1) success (if the TC asks for it) or (1,2) failure;
2. start: the target is not busy -> (1,3) or (1,4);
3. completion: the handler returns -> (1,7), or raises -> (1,8).

Every report carries the request id (the TC's packet id and sequence control, i.e. the
first 4 bytes of its primary header); failures add a failure code (u16) and a reason.
Bytes that are not even a space packet are counted and raise ``cmd.MALFORMED_PACKET``.
Nothing fed to :meth:`CommandDispatcher.submit` ever raises.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fsw.ccsds import CcsdsError, CrcError, PacketType, PusTc, SeqFlags, SpacePacket
from fsw.ccsds.pus import ACK_ACCEPTANCE, ACK_COMPLETION, ACK_START
from fsw.core.component import Component
from fsw.core.declarations import Channel, CommandSpec, Event, Mode, Report, Severity
from fsw.core.declarations import command as command_decl
from fsw.core.errors import CommandFailed, DeclarationError, FailureCode
from fsw.core.persistence import clip
from fsw.core.registry import registry_of
from fsw.core.wire import Arg, decode

_REQ = Arg("request_id", "u32", description="TC packet id and sequence control (4 bytes)")
FAILURE_CODE_ARG = Arg(
    "failure_code",
    "enum",
    base="u16",
    labels=tuple(c.name for c in FailureCode),
    label_values=tuple(int(c) for c in FailureCode),
)
_REASON = Arg("reason", "str", max_len=255, description="failure data: why, in words")
_FAIL_FIELDS = (_REQ, FAILURE_CODE_ARG, _REASON)

_OK = struct.Struct(">I")
_FAIL = struct.Struct(">IH")


@dataclass(slots=True, frozen=True)
class CommandEntry:
    """A registered command: its spec, owner, bound handler and function id."""

    full_name: str
    spec: CommandSpec
    component: Component
    handler: Callable[..., Any]
    function_id: int | None


class CommandDispatcher(Component):
    """Accepts, verifies and routes every telecommand."""

    NAME = "cmd"
    DESCRIPTION = "TC acceptance and routing; PUS services 1 (verification), 8 and 17."
    TELEMETRY = (
        Channel("tc_received", "u32", description="packets handed to the dispatcher", id=4),
        Channel("tc_accepted", "u32", description="TCs that passed acceptance", id=5),
        Channel("tc_rejected", "u32", description="TCs refused at acceptance (1,2)", id=6),
        Channel("tc_failed", "u32", description="TCs that failed to start or complete", id=7),
        Channel("tc_malformed", "u32", description="uplinked bytes that were no TC at all", id=8),
        Channel("uplink_dropped", "u32", description="TCs dropped: uplink queue full", id=9),
        Channel("last_service", "u8", description="service of the last accepted TC", id=10),
        Channel("last_subservice", "u8", description="subservice of the last accepted TC", id=11),
    )
    EVENTS = (
        Event(
            "TC_REJECTED",
            Severity.LOW,
            "{command} refused: {failure_code}: {reason}",
            (Arg("command", "str", max_len=48), FAILURE_CODE_ARG, _REASON),
            id=1,
        ),
        Event(
            "TC_FAILED",
            Severity.MEDIUM,
            "{command} failed: {failure_code}: {reason}",
            (Arg("command", "str", max_len=48), FAILURE_CODE_ARG, _REASON),
            id=2,
        ),
        Event(
            "MALFORMED_PACKET",
            Severity.LOW,
            "{length} uplinked bytes dropped: {reason}",
            (Arg("length", "u32"), _REASON),
            id=3,
        ),
        Event(
            "UPLINK_OVERFLOW",
            Severity.MEDIUM,
            "uplink queue full ({capacity} TCs): TC dropped",
            (Arg("capacity", "u16"),),
            id=4,
        ),
    )
    REPORTS = (
        Report("ACCEPT_OK", 1, 1, (_REQ,), "acceptance success", apid="verification"),
        Report("ACCEPT_FAIL", 1, 2, _FAIL_FIELDS, "acceptance failure", apid="verification"),
        Report("START_OK", 1, 3, (_REQ,), "start of execution success", apid="verification"),
        Report("START_FAIL", 1, 4, _FAIL_FIELDS, "start of execution failure", apid="verification"),
        Report("DONE_OK", 1, 7, (_REQ,), "completion of execution success", apid="verification"),
        Report(
            "DONE_FAIL", 1, 8, _FAIL_FIELDS, "completion of execution failure", apid="verification"
        ),
        Report("PONG", 17, 2, (), "are-you-alive report"),
    )
    HK_INTERVAL_S = 10.0

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self._by_ss: dict[tuple[int, int], CommandEntry] = {}
        self._by_fid: dict[int, CommandEntry] = {}
        self._entries: list[CommandEntry] = []
        self._queue: deque[bytes] = deque()
        self._overflows = 0

    # ------------------------------------------------------------ registration
    def register(self, comp: Component) -> None:
        """Add ``comp``'s commands to the routing tables."""
        cid = comp.component_id
        new: list[CommandEntry] = []
        for spec in type(comp).commands():
            handler = getattr(comp, spec.method)
            if spec.is_function:
                assert spec.opcode is not None
                fid = (cid << 8) | spec.opcode
                if fid in self._by_fid:
                    raise DeclarationError(f"function id 0x{fid:04X} is already used")
                new.append(CommandEntry(f"{comp.name}.{spec.name}", spec, comp, handler, fid))
            else:
                assert spec.service is not None and spec.subservice is not None
                key = (spec.service, spec.subservice)
                if key in self._by_ss or spec.service == 8:
                    raise DeclarationError(
                        f"command {spec.name}: ({key[0]},{key[1]}) is already taken"
                    )
                if any(e.full_name == spec.name for e in self._entries):
                    raise DeclarationError(f"command name {spec.name} is already taken")
                new.append(CommandEntry(spec.name, spec, comp, handler, None))
        for e in new:
            if e.function_id is not None:
                self._by_fid[e.function_id] = e
            else:
                assert e.spec.service is not None and e.spec.subservice is not None
                self._by_ss[(e.spec.service, e.spec.subservice)] = e
            self._entries.append(e)

    def entries(self) -> tuple[CommandEntry, ...]:
        """Every registered command, in registration order."""
        return tuple(self._entries)

    # ------------------------------------------------------------ uplink
    def submit(self, raw: bytes | bytearray | memoryview) -> None:
        """Queue one uplinked packet for the next cycle. Never raises, and touches only the
        queue, so a link thread may call it while the executive runs."""
        if len(self._queue) >= registry_of(self).config.uplink_capacity:
            self._overflows += 1
            return
        try:
            data = bytes(raw)
        except (TypeError, ValueError):
            data = b""  # not bytes at all: counted as malformed when drained
        self._queue.append(data)

    def drain(self) -> None:
        """Execute every queued TC (called by the executive at the start of a cycle)."""
        if self._overflows:
            n, self._overflows = self._overflows, 0
            self.tlm_inc("uplink_dropped", n)
            self.tlm_inc("tc_received", n)
            self.event("UPLINK_OVERFLOW", registry_of(self).config.uplink_capacity)
        q = self._queue
        while q:
            self.execute(q.popleft(), "ground")

    @property
    def pending(self) -> int:
        """TCs waiting in the uplink queue."""
        return len(self._queue)

    # ------------------------------------------------------------ execution
    def execute(self, raw: bytes, source: str = "ground", *, dict_hash: int = 0) -> None:
        """Accept, verify and execute one TC packet now. Never raises.

        ``dict_hash`` is the dictionary a stored or time-tagged TC was checked under
        (0: not known). If it differs from the one flying now, the TC is refused with
        (1,2) ``DICTIONARY_MISMATCH``: its raw function and parameter ids may name
        something else since a software update.
        """
        try:
            self._execute(raw, source, dict_hash)
        except Exception:  # last line of defence: the dispatcher must keep running
            self.log.exception("internal error while handling a TC from %s", source)
            registry_of(self).count(self, 2)

    def _execute(self, raw: bytes, source: str, dict_hash: int = 0) -> None:
        rt = registry_of(self)
        self.tlm_inc("tc_received")
        tc = self._decode_tc(raw, rt.config.tc_apid)
        if tc is None:
            return
        req = int.from_bytes(raw[:4], "big")
        if dict_hash and rt.dict_hash and dict_hash != rt.dict_hash:
            reason = (
                f"{source}: stored under dictionary {dict_hash:08x}, this flight runs "
                f"{rt.dict_hash:08x}; upload it again"
            )
            label = f"({tc.service},{tc.subservice})"
            self._report_fail(2, req, FailureCode.DICTIONARY_MISMATCH, reason, label, None)
            return
        accepted = self._accept(tc, req)
        if accepted is not None:
            entry, args = accepted
            self._run(entry, args, tc.ack_flags, req, source)

    def _decode_tc(self, raw: bytes, tc_apid: int) -> PusTc | None:
        """The PUS TC in ``raw``, or None once its rejection is reported or counted."""
        try:
            pkt = SpacePacket.decode(raw)
        except CcsdsError as exc:
            if _looks_like_our_tc(raw, tc_apid):  # a bad length: reject it with a (1,2)
                req = int.from_bytes(raw[:4], "big")
                self._report_fail(2, req, FailureCode.BAD_LENGTH, exc.reason, "?", None)
            else:
                self._malformed(raw, exc.reason)
            return None
        if pkt.packet_type != PacketType.TC:
            self._malformed(raw, "a telemetry packet was sent on the uplink")
            return None
        req = int.from_bytes(raw[:4], "big")
        if pkt.apid != tc_apid:
            reason = f"APID {pkt.apid} is not served here (TC APID is {tc_apid})"
            self._report_fail(2, req, FailureCode.ILLEGAL_APID, reason, "?", None)
            return None
        try:
            tc = PusTc.from_packet(pkt, raw)
        except CrcError as exc:
            self._report_fail(2, req, FailureCode.BAD_CHECKSUM, exc.reason, "?", None)
            return None
        except CcsdsError as exc:
            self._report_fail(2, req, FailureCode.MALFORMED, exc.reason, "?", None)
            return None
        if tc.seq_flags != SeqFlags.UNSEGMENTED:
            label = f"({tc.service},{tc.subservice})"
            reason = "segmented TCs are not supported"
            self._report_fail(2, req, FailureCode.MALFORMED, reason, label, None)
            return None
        return tc

    def _accept(self, tc: PusTc, req: int) -> tuple[CommandEntry, dict[str, Any]] | None:
        """Route and decode a TC; report (1,1) or (1,2). None if it is rejected."""
        rt = registry_of(self)
        label = f"({tc.service},{tc.subservice})"
        entry: CommandEntry | None = None
        try:
            entry, data = self._route(tc)
            label = entry.full_name
            args = decode(entry.spec.fields, data, rt.resolve)
            if rt.mode == Mode.SAFE and not entry.spec.allowed_in_safe:
                raise CommandFailed(
                    FailureCode.NOT_AUTHORISED, f"{entry.full_name} is not allowed in SAFE mode"
                )
        except CommandFailed as exc:
            comp = entry.component if entry else None
            self._report_fail(2, req, exc.code, _with_offset(exc), label, comp)
            return None
        self.tlm_inc("tc_accepted")
        rt.count(entry.component, 0)
        self.tlm("last_service", tc.service)
        self.tlm("last_subservice", tc.subservice)
        if tc.ack_flags & ACK_ACCEPTANCE:
            self._report_ok(1, req)
        return entry, args

    def _run(
        self, entry: CommandEntry, args: dict[str, Any], ack: int, req: int, source: str
    ) -> None:
        """Start and execute an accepted command; report (1,3)/(1,4), (1,7)/(1,8)."""
        comp = entry.component
        label = entry.full_name
        try:
            busy = comp.busy_reason(entry.spec.name, args)
        except Exception as exc:  # a faulty busy check must not stop the dispatcher
            busy = f"busy check raised {type(exc).__name__}: {exc}"
        if busy:
            self._report_fail(4, req, FailureCode.BUSY, busy, label, comp, count_error=False)
            return
        if ack & ACK_START:
            self._report_ok(3, req)
        try:
            entry.handler(**args)
        except CommandFailed as exc:
            self._report_fail(8, req, exc.code, exc.reason, label, comp)
            return
        except Exception as exc:
            comp.log.exception("command %s raised", entry.full_name)
            reason = f"internal error in {comp.name}: {type(exc).__name__}: {exc}"
            self._report_fail(8, req, FailureCode.EXECUTION_ERROR, reason, label, comp)
            return
        if ack & ACK_COMPLETION:
            self._report_ok(7, req)
        if source != "ground":
            self.log.debug("%s from %s completed", entry.full_name, source)

    def _route(self, tc: PusTc) -> tuple[CommandEntry, bytes]:
        if tc.service == 8 and tc.subservice == 1:
            if len(tc.app_data) < 2:
                raise CommandFailed(FailureCode.BAD_LENGTH, "(8,1) needs a 2-byte function id")
            fid = int.from_bytes(tc.app_data[:2], "big")
            entry = self._by_fid.get(fid)
            if entry is None:
                raise CommandFailed(FailureCode.UNKNOWN_COMMAND, f"no function with id 0x{fid:04X}")
            return entry, tc.app_data[2:]
        entry = self._by_ss.get((tc.service, tc.subservice))
        if entry is None:
            raise CommandFailed(
                FailureCode.UNKNOWN_COMMAND, f"no command ({tc.service},{tc.subservice})"
            )
        return entry, tc.app_data

    # ------------------------------------------------------------ reports
    def _report_ok(self, subservice: int, req: int) -> None:
        rt = registry_of(self)
        rt.send_reply(1, subservice, _OK.pack(req))

    def _report_fail(
        self,
        subservice: int,
        req: int,
        code: FailureCode,
        reason: str,
        label: str,
        comp: Component | None,
        *,
        count_error: bool = True,
    ) -> None:
        rt = registry_of(self)
        reason = clip(reason, 255)
        text = reason.encode("utf-8")
        rt.send_reply(1, subservice, _FAIL.pack(req, int(code)) + bytes((len(text),)) + text)
        if subservice == 2:
            self.tlm_inc("tc_rejected")
            if comp is not None:
                rt.count(comp, 1)
            self.event("TC_REJECTED", clip(label, 48), code.name, clip(reason))
        else:
            self.tlm_inc("tc_failed")
            if comp is not None and count_error:
                rt.count(comp, 2)
            self.event("TC_FAILED", clip(label, 48), code.name, clip(reason))

    def _malformed(self, raw: bytes, reason: str) -> None:
        self.tlm_inc("tc_malformed")
        self.event("MALFORMED_PACKET", len(raw) & 0xFFFF_FFFF, clip(reason))

    @command_decl(
        "RESET_COUNTERS",
        opcode=0,
        description="Zero the dispatcher's TC counters and its own counters.",
    )
    def reset_counters(self) -> None:
        super().reset_counters()
        for ch in (
            "tc_received",
            "tc_accepted",
            "tc_rejected",
            "tc_failed",
            "tc_malformed",
            "uplink_dropped",
        ):
            self.tlm(ch, 0)

    # ------------------------------------------------------------ service 17
    @command_decl(
        "PING",
        service=17,
        subservice=1,
        replies=((17, 2),),
        description="Are-you-alive test: answered by (17,2).",
    )
    def ping(self) -> None:
        registry_of(self).send_reply(17, 2, b"")


def _looks_like_our_tc(raw: bytes, tc_apid: int) -> bool:
    """A packet header that says version 0, TC, and our APID (whatever else is wrong)."""
    return (
        len(raw) >= 4
        and raw[0] >> 5 == 0
        and bool((raw[0] >> 4) & 1)
        and (((raw[0] & 7) << 8) | raw[1]) == tc_apid
    )


def _with_offset(exc: CommandFailed) -> str:
    return exc.reason if exc.offset is None else f"{exc.reason} (at app-data byte {exc.offset})"


__all__ = ["FAILURE_CODE_ARG", "CommandDispatcher", "CommandEntry"]
