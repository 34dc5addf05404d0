"""Helpers for tests and SITL: build TCs by command name, decode the downlink in-process.

The ground never uses this module (it works from the exported dictionary); tests,
the SITL runner and payload integrators may.

>>> from fsw.app import build_flight
>>> fs = build_flight()
>>> enc = CommandEncoder(fs)
>>> fs.uplink_packet(enc.encode("PARAM_GET", param_ids=[{"param_id": 0x0901}]))
>>> fs.step(0.0)
0
>>> [r.fields for r in decode_downlink(fs) if r.service == 20]
[{'params': [{'param_id': 2305, 'value': 3}]}]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fsw.ccsds import PusTc, PusTm
from fsw.ccsds.pus import ACK_ALL
from fsw.core.declarations import Report
from fsw.core.errors import CoreError
from fsw.core.wire import Arg, decode, decode_prefix, encode

if TYPE_CHECKING:
    from fsw.core.flight import FlightSoftware


@dataclass(slots=True, frozen=True)
class TmRecord:
    """One decoded TM packet. ``fields`` follows the report declaration (None if the
    (service, subservice) is not declared)."""

    apid: int
    service: int
    subservice: int
    t_tai: float
    seq_count: int
    msg_counter: int
    data: bytes
    name: str | None
    fields: dict[str, Any] | None

    @property
    def request_id(self) -> int | None:
        """Request id of a service-1 report."""
        return int.from_bytes(self.data[:4], "big") if self.service == 1 else None


class CommandEncoder:
    """Encodes TCs by dictionary name using the flight's own command table."""

    def __init__(self, fs: FlightSoftware, *, first_seq: int = 0) -> None:
        self.fs = fs
        self._seq = first_seq
        self._by_name = {e.full_name: e for e in fs.cmd.entries()}

    def encode(
        self, command: str, /, *, seq_count: int | None = None, ack: int = ACK_ALL, **args: Any
    ) -> bytes:
        """Bytes of the TC ``command`` with ``args`` (checked like the ground would)."""
        return self.encode_args(command, args, seq_count=seq_count, ack=ack)

    def encode_args(
        self,
        command: str,
        args: Mapping[str, Any],
        *,
        seq_count: int | None = None,
        ack: int = ACK_ALL,
    ) -> bytes:
        """Like :meth:`encode` with the arguments in a mapping."""
        entry = self._by_name.get(command)
        if entry is None:
            raise CoreError(f"no command named '{command}'")
        if seq_count is None:
            seq_count = self._seq
            self._seq = (self._seq + 1) & 0x3FFF
        data = encode(entry.spec.fields, args, self.fs.registry.resolve)
        if entry.function_id is not None:
            data = entry.function_id.to_bytes(2, "big") + data
            service, subservice = 8, 1
        else:
            assert entry.spec.service is not None and entry.spec.subservice is not None
            service, subservice = entry.spec.service, entry.spec.subservice
        return PusTc(
            apid=self.fs.config.tc_apid,
            service=service,
            subservice=subservice,
            app_data=data,
            seq_count=seq_count,
            ack_flags=ack,
        ).encode()


def _reports(fs: FlightSoftware) -> dict[tuple[int, int], tuple[str, Report]]:
    out: dict[tuple[int, int], tuple[str, Report]] = {}
    for comp in fs.registry.components.values():
        for rep in type(comp).REPORTS:
            out[(rep.service, rep.subservice)] = (f"{comp.name}.{rep.name}", rep)
    return out


def decode_tm(
    fs: FlightSoftware, raw: bytes, reports: dict[tuple[int, int], tuple[str, Report]] | None = None
) -> TmRecord:
    """Decode one TM packet produced by ``fs``."""
    from fsw.ccsds import cuc_decode

    tm = PusTm.decode(raw)
    reports = reports if reports is not None else _reports(fs)
    found = reports.get((tm.service, tm.subservice))
    fields: dict[str, Any] | None = None
    name: str | None = None
    if found is not None:
        name, rep = found
        if (tm.service, tm.subservice) == (3, 25):
            sid_vals, off = decode_prefix(rep.fields[:1], tm.app_data, 0)
            hk = fs.hk.report(sid_vals["sid"])
            values: dict[str, Any] = {}
            for cid in hk.channel_ids:
                info = fs.registry.channel_by_id[cid]
                arg: Arg = info.channel.arg
                values[info.full_name], off = arg.unpack(tm.app_data, off)
            fields = {"sid": sid_vals["sid"], "values": values}
        else:
            fields = decode(rep.fields, tm.app_data, fs.registry.resolve)
    return TmRecord(
        tm.apid,
        tm.service,
        tm.subservice,
        cuc_decode(tm.time),
        tm.seq_count,
        tm.msg_counter,
        tm.app_data,
        name,
        fields,
    )


def decode_downlink(fs: FlightSoftware, packets: list[bytes] | None = None) -> list[TmRecord]:
    """Decode ``packets`` (default: drain ``fs.downlink_packets()``). Packets without a
    PUS secondary header (CFDP PDUs on their own APID: files, not reports) are skipped."""
    raws = fs.downlink_packets() if packets is None else packets
    reports = _reports(fs)
    return [decode_tm(fs, r, reports) for r in raws if len(r) > 0 and r[0] & 0x08]


def verification(records: list[TmRecord], request_id: int) -> list[tuple[int, str | None]]:
    """The service-1 reports of one request: [(subservice, failure code name or None)]."""
    out: list[tuple[int, str | None]] = []
    for r in records:
        if r.service == 1 and r.request_id == request_id:
            code = r.fields.get("failure_code") if r.fields else None
            out.append((r.subservice, code))
    return out


def request_id_of(tc: bytes) -> int:
    """Request id of a TC: its first 4 header bytes as a u32."""
    return int.from_bytes(tc[:4], "big")


__all__ = [
    "CommandEncoder",
    "TmRecord",
    "decode_downlink",
    "decode_tm",
    "request_id_of",
    "verification",
]
