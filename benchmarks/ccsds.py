"""Space-link throughput bench: ``gnomon bench ccsds --json``.

Measures packets/s and MB/s for packet, PUS and TM-frame encode/decode (beside
spacepackets where it has the same operation, when it is installed), the full uplink
chain (packet → FOP-1 → SDLS → TC frame → CLTU → CLTU search → BCH → FARM-1 → SDLS →
packet) and the full downlink chain (packets → TM frames → randomize → ASM → sync →
derandomize → FECF → packets). Each figure is the best of several timed runs on one core.

>>> result = bench_ccsds(quick=True)
>>> sorted(result["operations"])[:3]
['packet_decode', 'packet_encode', 'packet_encode_fields']
"""

from __future__ import annotations

import os
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.ccsds.crc import CRC16_USES_C_EXTENSION
from fsw.ccsds.pus import PusTc, PusTm
from fsw.ccsds.spacepacket import SpacePacket, encode_packet
from fsw.ccsds.stack import GroundLink, SpacecraftLink
from fsw.ccsds.tmframe import TmFrame, tm_data_len

SPEEDUP_GOAL = 2.0
DOWNLINK_GOAL_MB_S = 50.0


def _best_rate(fn: Callable[[], object], n: int, repeats: int) -> float:
    """Calls per second of ``fn`` (best of ``repeats`` runs of ``n`` calls)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def _pair(
    ours: Callable[[], object],
    theirs: Callable[[], object] | None,
    item_bytes: int,
    n: int,
    repeats: int,
    min_seconds: float = 0.0,
) -> dict[str, Any]:
    """Interleaved rounds of both implementations, so machine noise hits both alike.

    At least ``repeats`` rounds of ``n`` calls per side, and more until ``min_seconds`` of
    wall time have passed: a burst of load from a neighbour then spoils some rounds of
    both sides, not a whole figure. Each side keeps its best round.
    """
    ours_best = theirs_best = 0.0
    rounds = 0
    t_end = time.perf_counter() + min_seconds
    while rounds < repeats or time.perf_counter() < t_end:
        ours_best = max(ours_best, _best_rate(ours, n, 1))
        if theirs is not None:
            theirs_best = max(theirs_best, _best_rate(theirs, n, 1))
        rounds += 1
    out: dict[str, Any] = {
        "bytes_per_item": item_bytes,
        "gnomon": {"per_s": round(ours_best), "mb_per_s": round(ours_best * item_bytes / 1e6, 2)},
    }
    if theirs is not None:
        out["spacepackets"] = {
            "per_s": round(theirs_best),
            "mb_per_s": round(theirs_best * item_bytes / 1e6, 2),
        }
        out["speedup"] = round(ours_best / theirs_best, 2)
    return out


def _spacepackets() -> dict[str, Any] | None:
    try:
        from spacepackets.ccsds.spacepacket import PacketType as SpType
        from spacepackets.ccsds.spacepacket import SpacePacket as SpPacket
        from spacepackets.ccsds.spacepacket import SpacePacketHeader
        from spacepackets.ccsds.tm_frame import (
            MasterChannelId,
            TmFramePrimaryHeader,
            TmTransferFrame,
            TransferFrameDataFieldStatus,
        )
        from spacepackets.ecss.tc import PusTc as SpTc
        from spacepackets.ecss.tm import PusTm as SpTm
        from spacepackets.version import get_version
    except ImportError:
        return None
    return {
        "SpType": SpType,
        "SpPacket": SpPacket,
        "SpacePacketHeader": SpacePacketHeader,
        "MasterChannelId": MasterChannelId,
        "TmFramePrimaryHeader": TmFramePrimaryHeader,
        "TmTransferFrame": TmTransferFrame,
        "TransferFrameDataFieldStatus": TransferFrameDataFieldStatus,
        "SpTc": SpTc,
        "SpTm": SpTm,
        "version": get_version(),
    }


def _operations(
    n: int, repeats: int, min_seconds: float = 0.0
) -> tuple[dict[str, Any], str | None]:
    sp = _spacepackets()
    data = os.urandom(100)
    ops: dict[str, Any] = {}
    ops.update(_packet_operations(sp, data, n, repeats, min_seconds))
    ops.update(_pus_operations(sp, data, n, repeats, min_seconds))
    ops.update(_frame_operations(sp, n, repeats, min_seconds))
    return ops, (sp["version"] if sp is not None else None)


def _packet_operations(
    sp: dict[str, Any] | None, data: bytes, n: int, repeats: int, min_seconds: float
) -> dict[str, Any]:
    """Space packet encode / decode, ours against spacepackets'."""
    ops: dict[str, Any] = {}
    built = SpacePacket(apid=0x10, data=data, seq_count=7)
    raw_pkt = built.encode()
    theirs_build = theirs_enc = theirs_dec = None
    if sp is not None:
        hdr_cls, pkt_cls, tm_type = sp["SpacePacketHeader"], sp["SpPacket"], sp["SpType"].TM
        their_built = pkt_cls(hdr_cls(tm_type, 0x10, 7, len(data) - 1), None, data)

        def theirs_build() -> object:
            return pkt_cls(hdr_cls(tm_type, 0x10, 7, len(data) - 1), None, data).pack()

        def theirs_enc() -> object:
            return their_built.pack()

        def theirs_dec() -> object:
            header = hdr_cls.unpack(raw_pkt)
            return header, raw_pkt[6 : header.packet_len]

    # From field values to bytes: our function vs their header + packet objects.
    ops["packet_encode_fields"] = _pair(
        lambda: encode_packet(0x10, data, seq_count=7), theirs_build, len(raw_pkt), n, repeats
    )
    # The same through our frozen dataclass (its construction dominates); informational.
    ops["packet_object_build_and_encode"] = _pair(
        lambda: SpacePacket(apid=0x10, data=data, seq_count=7).encode(),
        theirs_build,
        len(raw_pkt),
        n,
        repeats,
        min_seconds,
    )
    ops["packet_object_build_and_encode"]["informational"] = True
    ops["packet_encode"] = _pair(built.encode, theirs_enc, len(raw_pkt), n, repeats, min_seconds)
    ops["packet_decode"] = _pair(
        lambda: SpacePacket.decode(raw_pkt), theirs_dec, len(raw_pkt), n, repeats
    )
    return ops


def _pus_operations(
    sp: dict[str, Any] | None, data: bytes, n: int, repeats: int, min_seconds: float
) -> dict[str, Any]:
    """PUS-C TM and TC encode / decode, ours against spacepackets'."""
    ops: dict[str, Any] = {}
    time_field = bytes(6)
    raw_tm = PusTm(apid=0x10, service=3, subservice=25, app_data=data, time=time_field).encode()
    raw_tc = PusTc(apid=0x10, service=8, subservice=1, app_data=data).encode()
    sp_tm_enc = sp_tm_dec = sp_tc_enc = sp_tc_dec = None
    if sp is not None:
        sp_tm, sp_tc = sp["SpTm"], sp["SpTc"]

        def sp_tm_enc() -> object:
            return sp_tm(
                service=3, message_subtype=25, timestamp=time_field, source_data=data, apid=0x10
            ).pack()

        def sp_tm_dec() -> object:
            return sp_tm.unpack(raw_tm, timestamp_len=6)

        def sp_tc_enc() -> object:
            return sp_tc(service=8, message_subtype=1, apid=0x10, app_data=data).pack()

        def sp_tc_dec() -> object:
            return sp_tc.unpack(raw_tc)

    ops["pus_tm_encode"] = _pair(
        lambda: PusTm(apid=0x10, service=3, subservice=25, app_data=data, time=time_field).encode(),
        sp_tm_enc,
        len(raw_tm),
        n,
        repeats,
        min_seconds,
    )
    ops["pus_tm_decode"] = _pair(
        lambda: PusTm.decode(raw_tm), sp_tm_dec, len(raw_tm), n, repeats, min_seconds
    )
    ops["pus_tc_encode"] = _pair(
        lambda: PusTc(apid=0x10, service=8, subservice=1, app_data=data).encode(),
        sp_tc_enc,
        len(raw_tc),
        n,
        repeats,
        min_seconds,
    )
    ops["pus_tc_decode"] = _pair(
        lambda: PusTc.decode(raw_tc), sp_tc_dec, len(raw_tc), n, repeats, min_seconds
    )
    return ops


def _frame_operations(
    sp: dict[str, Any] | None, n: int, repeats: int, min_seconds: float
) -> dict[str, Any]:
    """TM transfer frame encode / decode (1115 bytes, OCF and FECF)."""
    ops: dict[str, Any] = {}
    frame_data = os.urandom(tm_data_len(1115))
    ocf = bytes.fromhex("01000000")
    raw_frame = TmFrame(42, 0, frame_data, fhp=0, ocf=ocf).encode()
    sp_fr_enc = sp_fr_dec = None
    if sp is not None:
        mc_id, hdr, frame_cls, dfs = (
            sp["MasterChannelId"],
            sp["TmFramePrimaryHeader"],
            sp["TmTransferFrame"],
            sp["TransferFrameDataFieldStatus"],
        )

        def sp_fr_enc() -> object:
            import fastcrc

            header = hdr(mc_id(0, 42), 0, True, 0, 0, dfs(False, False, False, 3, 0))
            body = header.pack() + frame_data + ocf
            fecf = fastcrc.crc16.ibm_3740(body).to_bytes(2, "big")
            return frame_cls(1115, header, None, frame_data, ocf, fecf).pack()

        def sp_fr_dec() -> object:
            return frame_cls.unpack(raw_frame, 1115, has_error_control_field=True)

    ops["tm_frame_encode"] = _pair(
        lambda: TmFrame(42, 0, frame_data, fhp=0, ocf=ocf).encode(),
        sp_fr_enc,
        1115,
        max(1, n // 4),
        repeats,
        min_seconds,
    )
    ops["tm_frame_decode"] = _pair(
        lambda: TmFrame.decode(raw_frame), sp_fr_dec, 1115, max(1, n // 4), repeats, min_seconds
    )
    return ops


def _uplink_chain(n_tc: int, repeats: int) -> dict[str, Any]:
    cfg = LinkConfig.load(TEST_KEY_FILE)
    commands = [
        PusTc(apid=0x10, service=8, subservice=1, seq_count=i, app_data=os.urandom(200)).encode()
        for i in range(n_tc)
    ]
    total = sum(map(len, commands))
    best = float("inf")
    for _ in range(repeats):
        sc, gnd = SpacecraftLink(cfg), GroundLink(cfg)
        now = 0.0
        t0 = time.perf_counter()
        delivered = 0
        for k, cmd in enumerate(commands):
            delivered += len(sc.receive(gnd.send_tc(cmd, now_s=now)))
            if k % 4 == 3:  # the CLCW comes back on the downlink and opens the window
                gnd.receive(sc.idle_frame(), now_s=now)
        elapsed = time.perf_counter() - t0
        if delivered != n_tc:
            raise RuntimeError(f"uplink bench delivered {delivered} of {n_tc} commands")
        best = min(best, elapsed)
    return {
        "description": "PUS TC (213 B) -> FOP-1 -> HMAC SDLS -> TC frame -> CLTU -> "
        "BCH decode -> FARM-1 -> packet; CLCW fed back every 4 TCs",
        "tc_per_s": round(n_tc / best),
        "mb_per_s": round(total / best / 1e6, 3),
    }


def _downlink_chain(n_pkts: int, repeats: int) -> dict[str, Any]:
    cfg = LinkConfig.load(TEST_KEY_FILE)
    packets = [
        PusTm(apid=0x20, service=3, subservice=25, seq_count=i, app_data=os.urandom(1000)).encode()
        for i in range(n_pkts)
    ]
    payload = sum(map(len, packets))
    best = float("inf")
    channel = 0
    for _ in range(repeats):
        sc, gnd = SpacecraftLink(cfg), GroundLink(cfg)
        t0 = time.perf_counter()
        cadus = sc.send(packets)
        got = gnd.receive(cadus, now_s=0.0)
        elapsed = time.perf_counter() - t0
        if got != packets:
            raise RuntimeError("downlink bench lost packets")
        channel = len(cadus)
        best = min(best, elapsed)
    return {
        "description": f"{n_pkts} PUS TM packets of 1015 B -> 1115-byte TM frames (FHP, CLCW, "
        "FECF) -> randomize -> ASM -> sync -> derandomize -> FECF -> packets",
        "packets_per_s": round(n_pkts / best),
        "mb_per_s": round(payload / best / 1e6, 2),
        "channel_mb_per_s": round(channel / best / 1e6, 2),
        "frames": channel // (cfg.tm_frame_len + 4),
    }


def bench_ccsds(quick: bool = False) -> dict[str, Any]:
    """Run the space-link bench; a JSON-able dict of the figures and whether goals hold."""
    repeats = 2 if quick else 5
    # The per-operation pairs alternate short rounds (4,000 calls; at least 25 rounds and
    # 2 s per pair) and keep each side's best round: on a shared, noisy machine a burst
    # then spoils rounds, not the figure.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ops, sp_version = _operations(500, 2) if quick else _operations(4_000, 25, 2.0)
    uplink = _uplink_chain(50 if quick else 1000, repeats)
    downlink = _downlink_chain(200 if quick else 4000, repeats)
    speedups = {
        name: op["speedup"]
        for name, op in ops.items()
        if "speedup" in op and not op.get("informational")
    }
    return {
        "bench": "ccsds",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "crc16_c_extension": CRC16_USES_C_EXTENSION,
        "spacepackets_version": sp_version,
        "operations": ops,
        "uplink_chain": uplink,
        "downlink_chain": downlink,
        "goals": {
            "speedup_vs_spacepackets": SPEEDUP_GOAL,
            "min_speedup": min(speedups.values()) if speedups else None,
            "speedup_met": bool(speedups) and min(speedups.values()) >= SPEEDUP_GOAL,
            "below_goal": sorted(k for k, v in speedups.items() if v < SPEEDUP_GOAL),
            "downlink_mb_per_s": DOWNLINK_GOAL_MB_S,
            "downlink_met": downlink["mb_per_s"] >= DOWNLINK_GOAL_MB_S,
        },
    }


__all__ = ["bench_ccsds"]
