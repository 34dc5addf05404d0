"""Build and run the cocotb suites of the Verilog blocks with Icarus Verilog.

Each :class:`Suite` names its top level, its Verilog sources (``hdl/``, harness tops in ``tb/``) and
its cocotb test module. :func:`run_suite` builds into a directory you choose (never the
source tree), runs every cocotb test, and returns the per-test results read from the
xUnit file plus the figures the tests measured::

    result = run_suite("bch", Path("/tmp/rtl"))
    assert result.passed, result.summary()

Errors are :class:`hil.rtl.errors.SimulationError` with the reason and the log path.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hil.rtl.errors import SimulationError
from hil.rtl.metrics import METRICS_ENV

RTL_DIR = Path(__file__).resolve().parent
#: The synthesizable Verilog (what would go into an FPGA).
HDL_DIR = RTL_DIR / "hdl"
#: The cocotb testbenches: ``test_*.py`` and their test-harness tops ``tb_*_top.v``.
TB_DIR = RTL_DIR / "tb"
REPO_ROOT = RTL_DIR.parent.parent
#: Seed used when none is given, so a failure can be replayed exactly.
DEFAULT_SEED = 20261121
#: Environment variable that overrides the default seed.
SEED_ENV = "GNOMON_RTL_SEED"


@dataclass(slots=True, frozen=True)
class Suite:
    """One cocotb suite: a top level, its sources and its test module."""

    name: str
    toplevel: str
    sources: tuple[str, ...]
    test_module: str
    parameters: tuple[tuple[str, int], ...] = ()

    def source_paths(self) -> list[Path]:
        """Absolute paths of the Verilog sources (test-harness tops come from ``tb/``)."""
        return [
            (TB_DIR if source.startswith("tb_") else HDL_DIR) / source for source in self.sources
        ]


SUITES: Mapping[str, Suite] = {
    "crc": Suite("crc", "tb_crc_top", ("crc_engine.v", "tb_crc_top.v"), "hil.rtl.tb.test_crc"),
    "bch": Suite(
        "bch",
        "tb_bch_top",
        ("crc_engine.v", "bch_decoder.v", "tb_bch_top.v"),
        "hil.rtl.tb.test_bch",
    ),
    "scrubber": Suite(
        "scrubber",
        "gnomon_scrub_soc",
        ("crc_engine.v", "dpram.v", "scrubber.v", "scrub_soc.v"),
        "hil.rtl.tb.test_scrubber",
        (("ARENA_AW", 16), ("TABLE_AW", 8)),
    ),
}


@dataclass(slots=True, frozen=True)
class CaseResult:
    """One cocotb test's outcome."""

    name: str
    passed: bool
    skipped: bool
    message: str
    real_time_s: float


@dataclass(slots=True, frozen=True)
class SuiteResult:
    """Outcome of one suite run."""

    suite: str
    seed: int
    cases: tuple[CaseResult, ...]
    metrics: tuple[dict[str, object], ...]
    log_path: Path

    @property
    def passed(self) -> bool:
        """True when at least one test ran and none failed."""
        return bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def failures(self) -> tuple[CaseResult, ...]:
        """The tests that failed or errored."""
        return tuple(c for c in self.cases if not c.passed)

    def summary(self) -> str:
        """A few lines for an operator: counts, each failure's message, seed and log."""
        ran = sum(1 for c in self.cases if not c.skipped)
        lines = [
            f"RTL suite {self.suite}: {ran - len(self.failures)}/{ran} cocotb tests passed "
            f"(seed {self.seed}, log {self.log_path})"
        ]
        lines += [f"  FAILED {c.name}: {c.message}" for c in self.failures]
        return "\n".join(lines)


def simulator_missing_reason() -> str | None:
    """Why the suites cannot run here (None when Icarus Verilog is installed)."""
    missing = [tool for tool in ("iverilog", "vvp") if shutil.which(tool) is None]
    if missing:
        return (
            f"Icarus Verilog not found ({', '.join(missing)} missing from PATH): "
            "run `make rtl-deps` as root or `apt-get install iverilog`"
        )
    return None


def parse_results(xml_text: str | bytes) -> tuple[CaseResult, ...]:
    """Test cases of a cocotb xUnit results file.

    >>> xml = ('<testsuites><testsuite name="t"><testcase name="a" time="0.5"/>'
    ...        '<testcase name="b" time="1"><failure message="boom"/></testcase>'
    ...        '</testsuite></testsuites>')
    >>> [(c.name, c.passed, c.message) for c in parse_results(xml)]
    [('a', True, ''), ('b', False, 'boom')]
    """
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as exc:
        raise SimulationError(f"cocotb results file is not valid XML: {exc}") from None
    cases = []
    for case in root.iter("testcase"):
        name = case.get("name") or "?"
        try:
            real_time_s = float(case.get("time") or 0.0)
        except ValueError:
            real_time_s = 0.0
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped") is not None
        message = ""
        if problem is not None:
            message = (problem.get("message") or problem.text or "failed").strip()
            message = message.splitlines()[0] if message else "failed"
        cases.append(CaseResult(name, problem is None, skipped, message, real_time_s))
    return tuple(cases)


def default_seed() -> int:
    """The seed from ``GNOMON_RTL_SEED``, else :data:`DEFAULT_SEED`."""
    text = os.environ.get(SEED_ENV, "").strip()
    if not text:
        return DEFAULT_SEED
    try:
        return int(text, 0)
    except ValueError:
        raise SimulationError(f"{SEED_ENV}={text!r} is not an integer seed") from None


def run_suite(
    name: str,
    build_dir: Path,
    *,
    seed: int | None = None,
    testcases: Sequence[str] | None = None,
    waves: bool = False,
) -> SuiteResult:
    """Build suite ``name`` under ``build_dir/name`` and run its cocotb tests.

    ``testcases`` keeps only the tests whose names start with one of the given names
    (a parametrized test's variants share its name).
    """
    suite = SUITES.get(name)
    if suite is None:
        raise SimulationError(f"no RTL suite {name!r}; known: {', '.join(sorted(SUITES))}")
    reason = simulator_missing_reason()
    if reason is not None:
        raise SimulationError(reason)
    from cocotb_tools.runner import get_runner  # heavy: only when a suite really runs

    seed = default_seed() if seed is None else seed
    work = Path(build_dir).resolve() / name
    work.mkdir(parents=True, exist_ok=True)
    results_xml = work / "results.xml"
    metrics_file = work / "metrics.jsonl"
    build_log = work / "build.log"
    sim_log = work / "sim.log"
    for stale in (results_xml, metrics_file):
        stale.unlink(missing_ok=True)
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    runner = get_runner("icarus")
    try:
        runner.build(
            sources=suite.source_paths(),
            hdl_toplevel=suite.toplevel,
            parameters=dict(suite.parameters),
            build_args=["-Wall"],
            build_dir=work,
            timescale=("1ns", "1ps"),
            waves=waves,
            log_file=build_log,
            always=True,
        )
    except subprocess.CalledProcessError:
        raise SimulationError(f"Icarus could not build RTL suite {name}: see {build_log}") from None
    try:
        runner.test(
            test_module=suite.test_module,
            hdl_toplevel=suite.toplevel,
            build_dir=work,
            test_dir=work,
            seed=seed,
            test_filter="|".join(re.escape(f".{t}") for t in testcases) if testcases else None,
            extra_env={"PYTHONPATH": pythonpath, METRICS_ENV: str(metrics_file)},
            results_xml=str(results_xml),
            waves=waves,
            log_file=sim_log,
        )
    except SystemExit:
        pass  # under pytest the cocotb runner exits on failures; the XML tells which
    except subprocess.CalledProcessError:
        pass  # the simulator failed; whatever results it left are read below
    if not results_xml.is_file():
        raise SimulationError(
            f"RTL suite {name} left no results (simulator crashed?): see {sim_log}"
        )
    cases = parse_results(results_xml.read_bytes())
    if not cases:
        raise SimulationError(f"RTL suite {name} ran no cocotb tests: see {sim_log}")
    return SuiteResult(name, seed, cases, _read_metrics(metrics_file), sim_log)


def _read_metrics(path: Path) -> tuple[dict[str, object], ...]:
    if not path.is_file():
        return ()
    metrics = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            metrics.append(value)
    return tuple(metrics)
