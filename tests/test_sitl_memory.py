"""A long SITL run fits in the memory of a short one (slow: two runs of the default
scenario, 5 and 30 orbits, each in its own process).

Peak RSS is compared, not time. Between 5 and 30 orbits the archive's SQLite cache (64 MiB
before it was bounded) and the report's trace (one sample every 10 s before it was
decimated) grew by about 30 MB; bounded, what still grows is the world's precomputed orbit
and Sun tables (about 1 MB per simulated day) and a few records per upset, pass and frame.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

#: Peak RSS a 30-orbit run may add to a 5-orbit one (MiB): the world's tables for 25 more
#: orbits (~2 MB), the archive cache and trace filling to their bounds (~4 MB), margin.
ALLOWED_GROWTH_MIB = 15.0

_RUN = """
import resource, sys
from gnomon.cli import main
sys.argv = ["gnomon", "sitl", "--orbits", sys.argv[1], "--out", sys.argv[2], "--json"]
try:
    main()
except SystemExit as exc:
    if exc.code:
        raise
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_mib(orbits: float, out: Path) -> float:
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, str(orbits), str(out)],
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary_line, rss_kib = proc.stdout.strip().splitlines()[-2:]
    assert json.loads(summary_line)["orbits"] == orbits
    return int(rss_kib) / 1024.0


def test_a_long_run_fits_in_the_memory_of_a_short_one(tmp_path: Path) -> None:
    short = _peak_rss_mib(5, tmp_path / "short")
    long = _peak_rss_mib(30, tmp_path / "long")
    print(f"peak RSS: 5 orbits {short:.1f} MiB, 30 orbits {long:.1f} MiB")
    assert long <= short + ALLOWED_GROWTH_MIB, (short, long)
