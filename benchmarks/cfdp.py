"""CFDP goodput as a share of the link rate: ``gnomon bench cfdp --json``.

Two real CFDP entities (:class:`fsw.ccsds.cfdp.CfdpEntity`, cfdp-py underneath) send a
random file over :mod:`hil.sim.cfdp_link`: downlink at ``down_bps``, uplink 64 kbit/s
(NAKs, ACKs, Finished), 60 ms one way, each space packet lost with probability ``loss``
both ways. Goodput = file bits / (contact time x downlink rate), in simulated time, so the
figure does not depend on this machine; the contact time counted ends when the receiver
holds every byte with its checksum verified (``goodput_closed_min`` counts until both ends
closed the transaction); the link rate is that of space packets (TM frame
headers, FECF and ASM are outside it). The host's CPU cost (seconds of CPU per MB moved,
both entities together) is reported beside it with the CPU it was measured on.

Goals (issue #15): class 1 on a clean link >= 90 % of the link rate; class 2 at 5 % loss
>= 75 %.

>>> r = bench_cfdp(quick=True)
>>> r["class1_clean"]["identical"], r["class2_loss5"]["identical"]
(True, True)
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any

from hil.sim.cfdp_link import run_transfer

CLASS1_GOAL = 0.90
CLASS2_GOAL = 0.75


def cpu_info() -> dict[str, Any]:
    """The CPU the figures were measured on (model and the SIMD flags that matter)."""
    model, flags = platform.processor() or "", list[str]()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:
        pass
    wanted = ("sse4_2", "avx", "avx2", "avx512f", "pclmulqdq", "neon", "asimd", "crc32")
    return {
        "machine": platform.machine(),
        "model": model,
        "cpus": os.cpu_count(),
        "flags": [f for f in wanted if f in flags],
        "python": platform.python_version(),
    }


def _runs(n: int, **kw: Any) -> dict[str, Any]:
    goodputs, closed, identical, cpu, retx = [], [], True, 0.0, 0
    size = int(kw["size"])
    for seed in range(1, n + 1):
        c0 = time.process_time()
        r = run_transfer(seed=seed, **kw)
        cpu += time.process_time() - c0
        goodputs.append(r.goodput)
        closed.append(r.goodput_closed)
        identical = identical and r.identical and r.state == "finished"
        retx += r.fd_retransmitted
    return {
        "file_bytes": size,
        "runs": n,
        "identical": identical,
        "goodput_min": min(goodputs),
        "goodput_median": round(statistics.median(goodputs), 4),
        "goodput_closed_min": min(closed),
        "fd_retransmitted": retx,
        "cpu_s_per_mb": round(cpu / (n * size / 1e6), 3),
    }


def bench_cfdp(quick: bool = False, down_bps: float = 1_000_000.0) -> dict[str, Any]:
    """Class 1 on a clean link, class 2 at 5 % loss, class 2 at 5 % loss with an LOS."""
    size = 100_000 if quick else 2_000_000
    n = 1 if quick else 10
    # ACK/NAK timers of a few round trips (120 ms here); the SITL flight, stepped once a
    # second, uses 3 s (CfdpConfig's default), which costs goodput only after a loss.
    link = {"down_bps": down_bps, "up_bps": 64_000.0, "delay_s": 0.06, "timer_s": 1.0}
    c1 = _runs(n, size=size, acknowledged=False, loss=0.0, **link)
    c2 = _runs(n, size=size, acknowledged=True, loss=0.05, **link)
    c2_small = _runs(n, size=200_000, acknowledged=True, loss=0.05, **link)
    c2_los = _runs(
        1 if quick else 3, size=size, acknowledged=True, loss=0.05, los_at_first_eof=900, **link
    )
    return {
        "bench": "cfdp",
        "cpu": cpu_info(),
        "link": {**link, "loss_both_ways": 0.05, "pdu_bytes_down": 1024, "pdu_bytes_up": 988},
        "class1_clean": c1,
        "class2_loss5": c2,
        "class2_loss5_200kB": c2_small,
        "class2_loss5_los900s_at_eof": c2_los,
        "goals": {
            "class1_clean": CLASS1_GOAL,
            "class1_met": c1["goodput_min"] >= CLASS1_GOAL,
            "class2_loss5": CLASS2_GOAL,
            "class2_met": c2["goodput_min"] >= CLASS2_GOAL,
        },
    }


__all__ = ["bench_cfdp", "cpu_info"]
