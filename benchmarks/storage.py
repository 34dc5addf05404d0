"""On-board storage rates: ``gnomon bench storage --json``.

Store writes (``PacketStore.append``: one CRC-32C and one ``os.write`` per record, an
fsync at the end), the same through the component's routing (``PacketStores.route``, what
every TM packet of the flight pays), and playback reads (``read_from`` in 8 KiB pulls, the
radio's playback calls, CRC-checked). One core, one process; the goal from issue #15 is
50,000 packets/s written. Packets are 100 bytes (a default SITL housekeeping report
averages 91: 1.29 MB for 14,159 reports in a 1-orbit run) and 1,000 bytes.

>>> r = bench_storage(quick=True)
>>> sorted(r["write"]), r["goal_packets_per_s"]
(['packet_1000_B', 'packet_100_B'], 50000)
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from fsw.ccsds.pus import PusTm
from fsw.core.clock import SimClock
from fsw.core.flight import FlightSoftware
from fsw.core.registry import Priority
from fsw.storage.packetstore import Cursor, PacketStore
from fsw.storage.stores import PacketStores

GOAL_PACKETS_PER_S = 50_000
_INTERESTING_FLAGS = ("sse4_2", "avx", "avx2", "avx512f", "aes", "pclmulqdq", "asimd", "crc32")


def cpu_info() -> dict[str, Any]:
    """This machine's CPU: model, the flags that matter to CRCs and copies, core count."""
    model, flags = platform.processor() or platform.machine(), set[str]()
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model") and value.strip():
            model = value.strip()
        elif key in ("flags", "Features"):
            flags.update(value.split())
    return {
        "cpu": model,
        "cpu_flags": sorted(f for f in _INTERESTING_FLAGS if f in flags),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }


def _packets(size: int, n: int) -> list[bytes]:
    body = bytes(range(256)) * (size // 256 + 1)
    return [PusTm(apid=100, service=3, subservice=25, app_data=body[: size - 19]).encode()] * n


def _write(root: Path, packets: list[bytes]) -> tuple[float, PacketStore]:
    st = PacketStore(root, capacity_bytes=1 << 30, segment_bytes=1 << 22, circular=True)
    t = 1.0e9
    t0 = time.perf_counter()
    for i, p in enumerate(packets):
        st.append(p, t + i * 1e-3)
    st.sync()
    return time.perf_counter() - t0, st


def _read(st: PacketStore) -> tuple[float, int]:
    cur = Cursor(st.segments[0].number)
    n = 0
    t0 = time.perf_counter()
    done = False
    while not done:
        recs, cur, done = st.read_from(cur, 8192)
        n += len(recs)
    return time.perf_counter() - t0, n


def _route(root: Path, packets: list[bytes]) -> float:
    fs = FlightSoftware(SimClock())
    comp = fs.add_component(PacketStores(root, fs.storage), component_id=18)
    comp.set_contact(False)
    t0 = time.perf_counter()
    for i, p in enumerate(packets):
        comp.route(Priority.EVENT, p, 1.0e9 + i * 1e-3)
    comp.on_tick("1Hz")  # the once-a-second sync
    dt = time.perf_counter() - t0
    comp.close()
    return dt


def _rates(seconds: float, packets: int, size: int) -> dict[str, float]:
    return {
        "packets_per_s": round(packets / seconds),
        "mb_per_s": round(packets * size / seconds / 1e6, 2),
    }


def bench_storage(quick: bool = False, directory: str | None = None) -> dict[str, Any]:
    """Write, route and playback rates (``directory``: where the stores go; default a
    temporary directory, e.g. name the board's SD card)."""
    n = 5_000 if quick else 200_000
    write: dict[str, Any] = {}
    dump: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        for size in (100, 1000):
            count = n if size == 100 else n // 4
            pkts = _packets(size, count)
            dt, st = _write(Path(tmp) / f"w{size}", pkts)
            write[f"packet_{size}_B"] = {"packets": count, **_rates(dt, count, size)}
            rd, got = _read(st)
            if got != count:
                raise RuntimeError(f"playback read {got} of {count} packets")
            dump[f"packet_{size}_B"] = {"packets": got, **_rates(rd, got, size)}
            st.close()
        pkts = _packets(100, n)
        route_s = _route(Path(tmp) / "route", pkts)
        where = str(Path(tmp).parent)
    return {
        "goal_packets_per_s": GOAL_PACKETS_PER_S,
        "write": write,
        "route_through_component": {"packets": n, **_rates(route_s, n, 100)},
        "dump": dump,
        "meets_goal": write["packet_100_B"]["packets_per_s"] >= GOAL_PACKETS_PER_S,
        "directory": where,
        "fsyncs": "one at the end of each write run (the component syncs once a second)",
        **cpu_info(),
    }


__all__ = ["bench_storage", "cpu_info"]
