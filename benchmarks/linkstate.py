"""What saving the link state costs per accepted TC frame: ``gnomon bench linkstate --json``.

The flight saves FARM-1's V(R) and the SDLS anti-replay numbers before it hands a frame's
packets on (two copies, each written and fsynced in turn: ``fsw.core.nvstore``
``save_mirrored``). This times ``SpacecraftLink.receive`` for one authenticated AD frame
(CLTU decode, FARM-1, HMAC, the save) with no store, with the in-memory store (SITL) and
with a storage directory (the board; default a temporary directory, ``--dir`` names
another, e.g. the board's SD card). Each figure is the median and 90th percentile of
single-frame timings, so a burst of load spoils a few samples, not the figure.

>>> result = bench_linkstate(quick=True)
>>> sorted(result["stores"])
['directory', 'memory', 'none']
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.ccsds.linkstate import LinkState, SaState, StateStore
from fsw.ccsds.pus import PusTc
from fsw.ccsds.stack import GroundLink, SpacecraftLink
from fsw.comms.radio import NvLinkStateStore
from fsw.core.nvstore import DirNvStore, MemNvStore


def _time_frames(store: StateStore | None, frames: int) -> list[float]:
    """Seconds per accepted frame, one sample per frame."""
    cfg = LinkConfig.load(TEST_KEY_FILE)
    if store is not None:
        store.save(
            LinkState(
                0, tuple(SaState(sa.spi, sa.key_id, 0) for sa in cfg.security_associations)
            ).encode()
        )
    sc, gnd = SpacecraftLink(cfg, store), GroundLink(cfg)
    if sc.locked:
        raise RuntimeError(f"link state not usable: {sc.state_report}")
    samples = []
    for n in range(frames):
        cltu = gnd.send_tc(PusTc(apid=1, service=17, subservice=1, seq_count=n).encode(), now_s=n)
        t0 = time.perf_counter()
        delivered = sc.receive(cltu)
        samples.append(time.perf_counter() - t0)
        if len(delivered) != 1:
            raise RuntimeError(f"frame {n} was not accepted: {sc.counters}")
        gnd.receive(sc.idle_frame(), now_s=n + 0.5)  # the CLCW keeps the FOP window open
    return samples


def _figures(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    median = statistics.median(ordered)
    return {
        "median_ms": round(median * 1e3, 3),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))] * 1e3, 3),
        "frames_per_s_at_median": round(1.0 / median, 1),
    }


def bench_linkstate(quick: bool = False, directory: str | None = None) -> dict[str, Any]:
    """Per-frame receive cost with no store, the memory store and a storage directory."""
    frames = 20 if quick else 300
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        stores: dict[str, StateStore | None] = {
            "none": None,
            "memory": NvLinkStateStore(MemNvStore()),
            "directory": NvLinkStateStore(DirNvStore(Path(tmp) / "storage")),
        }
        results = {name: _figures(_time_frames(store, frames)) for name, store in stores.items()}
        where = str(Path(tmp).parent)
    save_ms = results["directory"]["median_ms"] - results["none"]["median_ms"]
    return {
        "frames": frames,
        "directory": where,
        "stores": results,
        "save_cost_ms": round(save_ms, 3),
        "fsyncs_per_frame": 2,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


__all__ = ["bench_linkstate"]
