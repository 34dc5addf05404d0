"""``gnomon bench ground``: decode and archive throughput on a synthetic 1,000-channel stream.

The stream is housekeeping only, the load that breaks ground systems: ``n_channels``
channels (mostly f32, some integers, enums and booleans) in structures of
``per_structure`` channels, each report a PUS (3,25) packet stamped 2 ms after the
previous one (1,000 channels at 500 Hz). Figures, all on one core:

- ``decoded_samples_per_s``: packets to values (PEC check, header, one unpack per report);
- ``session_samples_per_s``: the same through :class:`GroundSession` (latest-value table);
- ``link_samples_per_s``: from CADU bytes (ASM sync, derandomize, frames, packets) on;
- ``archived_samples_per_s``: decode plus archiving of packets and samples, committed;
- ``archive_insert_samples_per_s``: the archive's sample inserts alone.

Goals: >= 500,000 decoded and >= 200,000 archived samples per second.

>>> r = bench_ground(n_channels=100, n_reports=20)
>>> r["channels"], r["decoded_samples"], r["archived_samples"]
(100, 2000, 2000)
"""

from __future__ import annotations

import platform
import random
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

from fsw.ccsds import TEST_KEY_FILE, LinkConfig, PusTm, SpacecraftLink, cuc_encode
from ground.archive import Archive
from ground.codec import TmDecoder
from ground.dictionary import Dictionary, minimal_dictionary
from ground.session import GroundSession

GOAL_DECODED = 500_000
GOAL_ARCHIVED = 200_000
_TYPES = ("f32",) * 14 + ("u16", "u16", "u32", "i16", "enum", "bool")
_START_TAI = 2.1e9


def synthetic_dictionary(n_channels: int = 1000, per_structure: int = 250) -> dict[str, Any]:
    """A valid dictionary with ``n_channels`` channels of a component ``syn`` in HK
    structures (sids 1, 2, ...) of ``per_structure`` channels."""
    doc = minimal_dictionary()
    no_limits = {"red_low": None, "yellow_low": None, "yellow_high": None, "red_high": None}
    channels = []
    for i in range(n_channels):
        t = _TYPES[i % len(_TYPES)]
        ch: dict[str, Any] = {
            "name": f"syn.ch{i:04d}",
            "id": 0x10000 + i,
            "component": "syn",
            "type": t,
            "units": "",
            "limits": no_limits,
        }
        if t == "f32":
            ch["limits"] = {
                "red_low": -90.0,
                "yellow_low": -50.0,
                "yellow_high": 50.0,
                "red_high": 90.0,
            }
        if t == "enum":
            ch["base"] = "u8"
            ch["labels"] = [
                {"value": v, "label": lab} for v, lab in enumerate(("OFF", "IDLE", "BUSY", "FAULT"))
            ]
        channels.append(ch)
    doc["telemetry"] = channels
    doc["housekeeping"] = [
        {
            "sid": 1 + k // per_structure,
            "name": f"syn{k // per_structure}",
            "interval_s": 0.002,
            "enabled": True,
            "channels": [c["id"] for c in channels[k : k + per_structure]],
        }
        for k in range(0, n_channels, per_structure)
    ]
    doc["content_hash"] = f"sha256:synthetic-{n_channels}"
    return doc


def _value(t: str, rng: random.Random) -> Any:
    if t == "f32":
        return rng.uniform(-100.0, 100.0)
    if t == "u16":
        return rng.randrange(0x10000)
    if t == "u32":
        return rng.randrange(1 << 32)
    if t == "i16":
        return rng.randrange(-0x8000, 0x8000)
    if t == "enum":
        return rng.randrange(4)
    return rng.randrange(2)


def synthetic_stream(
    doc: dict[str, Any], n_reports: int, seed: int = 1, rate_hz: float = 500.0
) -> list[bytes]:
    """``n_reports`` (3,25) packets cycling over the structures, one cycle per 1/rate_hz."""
    rng = random.Random(seed)
    d = Dictionary(doc)
    hks = sorted(d.housekeeping.values(), key=lambda h: h.sid)
    packers = []
    for hk in hks:
        fields = [d.channels_by_id[c].field for c in hk.channel_ids]
        fmt = ">H" + "".join(f.struct_code or "" for f in fields)
        packers.append((hk.sid, struct.Struct(fmt), [f.type for f in fields]))
    out = []
    for i in range(n_reports):
        sid, st, types = packers[i % len(packers)]
        t = _START_TAI + (i // len(packers)) / rate_hz
        data = st.pack(sid, *(_value(ty, rng) for ty in types))
        out.append(
            PusTm(
                apid=102,
                service=3,
                subservice=25,
                app_data=data,
                time=cuc_encode(t),
                seq_count=i & 0x3FFF,
                msg_counter=i & 0xFFFF,
            ).encode()
        )
    return out


def _rate(samples: int, seconds: float) -> int:
    return int(samples / seconds) if seconds > 0 else 0


def bench_ground(
    n_channels: int = 1000, n_reports: int = 4000, per_structure: int = 250
) -> dict[str, Any]:
    """Measure the figures listed in the module docstring; one JSON-able dict."""
    doc = synthetic_dictionary(n_channels, per_structure)
    d = Dictionary(doc)
    packets = synthetic_stream(doc, n_reports)
    per_report = sum(len(h.channel_ids) for h in d.housekeeping.values()) / len(d.housekeeping)
    samples = int(per_report * n_reports)

    decoder = TmDecoder(d)
    t0 = time.perf_counter()
    n = 0
    for raw in packets:
        hk = decoder.decode(raw).hk
        assert hk is not None
        n += len(hk.values)
    t_decode = time.perf_counter() - t0
    assert n == samples

    session = GroundSession(d, None)
    t0 = time.perf_counter()
    session.receive_packets(packets, 0.0)
    t_session = time.perf_counter() - t0
    assert session.stats["samples"] == samples

    cfg = LinkConfig.load(TEST_KEY_FILE)
    cadus = SpacecraftLink(cfg).send(packets)
    linked = GroundSession(d, cfg)
    t0 = time.perf_counter()
    for i in range(0, len(cadus), 65536):
        linked.receive(cadus[i : i + 65536], 0.0)
    t_link = time.perf_counter() - t0
    link_samples = linked.stats["samples"]

    with tempfile.TemporaryDirectory(prefix="gnomon-bench-") as tmp:
        archive = Archive(Path(tmp) / "bench.sqlite")
        archived = GroundSession(d, None, archive=archive)
        t0 = time.perf_counter()
        for i in range(0, len(packets), 500):  # 1 s of stream per call
            archived.receive_packets(packets[i : i + 500], float(i))
        archive.flush()
        t_archive = time.perf_counter() - t0
        stored = archive.counts()["samples"]
        archive.close()

        insert_only = Archive(Path(tmp) / "insert.sqlite")
        insert_only.set_dictionary(d)
        hk_values = [decoder.decode(raw).hk for raw in packets]
        t0 = time.perf_counter()
        for k, hk in enumerate(hk_values):
            assert hk is not None
            insert_only.add_samples(_START_TAI + k * 1e-3, hk.layout.ids, hk.values)
            if k % 500 == 499:
                insert_only.flush()
        insert_only.flush()
        t_insert = time.perf_counter() - t0
        insert_only.close()

    decoded_rate = _rate(samples, t_decode)
    archived_rate = _rate(stored, t_archive)
    return {
        "channels": n_channels,
        "per_structure": per_structure,
        "reports": n_reports,
        "decoded_samples": samples,
        "decoded_samples_per_s": decoded_rate,
        "session_samples_per_s": _rate(samples, t_session),
        "link_samples_per_s": _rate(link_samples, t_link),
        "link_samples": link_samples,
        "archived_samples": stored,
        "archived_samples_per_s": archived_rate,
        "archive_insert_samples_per_s": _rate(samples, t_insert),
        "goal_decoded_samples_per_s": GOAL_DECODED,
        "goal_archived_samples_per_s": GOAL_ARCHIVED,
        "meets_goals": decoded_rate >= GOAL_DECODED and archived_rate >= GOAL_ARCHIVED,
        "python": platform.python_version(),
    }


__all__ = ["bench_ground", "synthetic_dictionary", "synthetic_stream"]
