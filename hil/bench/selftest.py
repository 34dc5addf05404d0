"""``gnomon hil selftest``: the board as a subprocess on one end of a pty cable, the bench
on the other, checked the way an operator checks a new bench.

:func:`selftest` starts the board (:func:`start_board`, ``gnomon fsw run --sim-bridge``)
on one end of a :class:`~hil.bench.cable.PtyCable` and a :class:`~hil.bench.bench.Bench`
on the other, then checks in turn: the board's hello (with both models' measured
latency), telemetry and the bench's EPS on board, command round trips, a saturating
transfer against the line rate, and an unplug/replug of the board's end while commands
are in flight (COP-1 retransmits). The board's own summary (its last stdout line) says
whether it saw its port vanish and come back and whether it exited cleanly.

>>> board_summary_of(["starting", '{"cycles": 12, "cable": {}}', "bye"])
{'cycles': 12, 'cable': {}}
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ground.tracker import Stage
from hil.bench.bench import Bench, percentiles_ms
from hil.bench.cable import DEFAULT_BAUD, PtyCable, line_rate_bytes_s
from hil.bench.errors import HilError

BOARD_ENTRY = "import sys; from fsw.cli import fsw_app; sys.exit(fsw_app(prog_name='gnomon fsw'))"


def start_board(
    link: str, log_path: Path, *, duration_s: float = 120.0, bench_timeout_s: float = 60.0
) -> subprocess.Popen[bytes]:
    """Start ``gnomon fsw run --link LINK --sim-bridge`` as a subprocess (its output in
    ``log_path``; the summary JSON is its last stdout line)."""
    args = [
        sys.executable,
        "-c",
        BOARD_ENTRY,
        "run",
        "--link",
        link,
        "--sim-bridge",
        "--duration",
        str(duration_s),
        "--bench-timeout",
        str(bench_timeout_s),
    ]
    out = open(log_path, "wb")  # noqa: SIM115 - handed to the child, closed with it
    try:
        return subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    finally:
        out.close()


def board_summary_of(lines: list[str]) -> dict[str, Any]:
    """The board's summary: the last JSON object line with a ``cycles`` count ({} if none)."""
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict) and "cycles" in doc:
                return doc
    return {}


class _Selftest:
    """One self-test in progress: the cable, the board process, the bench, the results.

    Each ``check_*`` step adds its named checks to :attr:`checks` and its figures to
    :attr:`result`; a step that waits pumps the bench until its condition holds, its own
    time limit, the overall deadline, or the board's exit, whichever comes first.
    """

    def __init__(self, tmp: Path, baud: int, speed: float, timeout_s: float) -> None:
        self.t_start = time.monotonic()
        self.deadline = self.t_start + timeout_s
        self.baud = baud
        self.cable = PtyCable(tmp / "ttyBOARD", tmp / "ttyBENCH", baud=baud)
        self.board_log = tmp / "board.log"
        self.board = start_board(
            f"serial://{tmp / 'ttyBOARD'}?baud={baud}",
            self.board_log,
            duration_s=timeout_s,
            bench_timeout_s=timeout_s,
        )
        self.bench_url = f"serial://{tmp / 'ttyBENCH'}?baud={baud}"
        self.timeout_s = timeout_s
        self.checks: dict[str, bool] = {}
        self.result: dict[str, Any] = {"baud": baud, "speed": speed, "workdir": str(tmp)}
        self._bench: Bench | None = None

    @property
    def bench(self) -> Bench:
        if self._bench is None:
            raise HilError("the self-test's bench is not open")
        return self._bench

    def open_bench(self, speed: float) -> None:
        self._bench = Bench(self.bench_url, "sitl-short", orbits=1.0, speed=speed, script=False)

    def pump_until(self, cond: Callable[[], bool], limit_s: float) -> bool:
        stop = min(self.deadline, time.monotonic() + limit_s)
        while not cond():
            if time.monotonic() > stop or self.board.poll() is not None:
                return cond()
            self.bench.pump(0.02)
        return True

    def check_board_hello(self) -> None:
        b = self.bench
        self.checks["board_hello"] = b.wait_for_board(min(60.0, self.timeout_s))
        inf = (b.hello or {}).get("inference_ms") or {}
        self.checks["board_measured_both_models"] = all(
            isinstance(inf.get(m), dict) and "p50_ms" in inf[m]
            for m in ("cloudnet-s", "cloudnet-l")
        )

    def check_telemetry(self) -> None:
        b = self.bench
        s = b.session
        self.checks["telemetry_flows"] = self.pump_until(lambda: s.stats["hk_reports"] >= 2, 30.0)
        self.checks["eps_from_bench"] = self.pump_until(
            lambda: (
                b.tlm("eps.valid") is True
                and abs(float(b.tlm("eps.soc_pct") or 0.0) - 100 * b.world.eps.soc) < 1.0
            ),
            30.0,
        )

    def check_round_trips(self, pings: int) -> None:
        """One command at a time, each waited for."""
        completed = 0
        for _ in range(pings):
            h = self.bench.command("PING")
            self.pump_until(lambda: h.done, 10.0)  # noqa: B023 - waited on before the next
            if h.reached(Stage.COMPLETED):
                completed += 1
        self.checks["commands_complete"] = completed == pings
        self.result["rtt_ms"] = percentiles_ms(self.bench.rtt_s)

    def check_throughput(self, bulk_s: float) -> None:
        """A saturating transfer, board to bench."""
        bulk = self.bench.measure_throughput(int(line_rate_bytes_s(self.baud) * bulk_s))
        self.result["bulk"] = bulk
        self.result["link_efficiency"] = bulk.get("efficiency", 0.0)
        self.checks["link_efficiency_goal"] = float(self.result["link_efficiency"]) >= 0.8

    def check_unplug(self, unplug_s: float) -> None:
        """Unplug the board's end, command while it is out, plug it back in."""
        b = self.bench
        s = b.session
        retrans0 = int(s.stats.get("fop_ad_retransmissions", 0))
        hk0 = int(s.stats["hk_reports"])
        self.cable.unplug("board")
        handles = [b.command("PING") for _ in range(3)]
        self.pump_until(lambda: False, unplug_s)
        self.cable.plug("board")
        ok = self.pump_until(lambda: all(h.reached(Stage.COMPLETED) for h in handles), 30.0)
        retrans = int(s.stats.get("fop_ad_retransmissions", 0)) - retrans0
        self.checks["unplug_commands_completed"] = ok
        self.checks["unplug_cop1_retransmitted"] = retrans > 0
        self.checks["unplug_telemetry_resumed"] = self.pump_until(
            lambda: int(s.stats["hk_reports"]) > hk0 + 1, 20.0
        )
        self.checks["bridge_telemetry"] = self.pump_until(
            lambda: int(b.tlm("bridge.time_syncs") or 0) > 0, 15.0
        )
        self.result["unplug"] = {
            "seconds": unplug_s,
            "commands": len(handles),
            "completed": sum(h.reached(Stage.COMPLETED) for h in handles),
            "cop1_retransmissions": retrans,
            "dropped_on_cable": self.cable.stats["dropped_bytes"],
        }

    def record_bench(self) -> None:
        b = self.bench
        self.result["board_inference_ms"] = (b.hello or {}).get("inference_ms") or {}
        self.result["link"] = b.link_stats(time.monotonic() - self.t_start)
        self.result["ground"] = {k: v for k, v in b.session.stats.items() if k != "last_error"}
        self.result["frames_sent_to_board"] = b.frames_sent
        self.result["sim_seconds"] = round(b.t_s, 1)

    def stop(self) -> None:
        """Stop the board (SIGINT, then kill), close the bench and the cable."""
        board = self.board
        if board.poll() is None:
            board.send_signal(signal.SIGINT)
            try:
                board.wait(timeout=15.0)
            except subprocess.TimeoutExpired:
                board.kill()
                board.wait()
        if self._bench is not None:
            self._bench.close()
        self.cable.close()

    def write_profile(self, path: Path, power_w: float | None) -> None:
        """The board's measured per-tile latency as a board profile file."""
        from hil.sim.errors import ScenarioError
        from hil.sim.profiles import measured_profile_toml

        inf = self.result.get("board_inference_ms") or {}
        host = str((self._bench.hello or {}).get("host", "the board")) if self._bench else "?"
        source = (
            "measured with a power meter during the self-test"
            if power_w is not None
            else "assumption: not measured (the bench has no power meter); pass --power-w"
        )
        try:
            text = measured_profile_toml(
                "measured-board", inf, power_w=power_w or 5.0, power_source=source, host=host
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except (ScenarioError, OSError) as exc:
            self.checks["profile_written"] = False
            self.result["profile_error"] = str(exc)
            return
        self.checks["profile_written"] = True
        self.result["profile"] = str(path)

    def check_board_exit(self) -> None:
        """What the board's summary says about its port and its exit."""
        text = self.board_log.read_text(encoding="utf-8", errors="replace")
        summary = board_summary_of(text.splitlines())
        cable_stats = summary.get("cable", {})
        self.result["board"] = {
            "exit_code": self.board.returncode,
            "cycles": summary.get("cycles"),
            "cable": cable_stats,
            "bridge": summary.get("bridge"),
            "log": str(self.board_log),
        }
        self.checks["board_port_vanished_and_reopened"] = (
            int(cable_stats.get("disconnects", 0)) >= 1 and int(cable_stats.get("connects", 0)) >= 2
        )
        self.checks["board_exited_cleanly"] = self.board.returncode == 0 and bool(summary)
        if not self.checks["board_exited_cleanly"]:
            self.result["board"]["log_tail"] = text.splitlines()[-12:]


def selftest(
    *,
    baud: int = DEFAULT_BAUD,
    speed: float = 10.0,
    pings: int = 20,
    unplug_s: float = 1.5,
    bulk_s: float = 2.0,
    workdir: Path | None = None,
    timeout_s: float = 90.0,
    profile_out: Path | None = None,
    power_w: float | None = None,
) -> dict[str, Any]:
    """Board subprocess on one end of a :class:`~hil.bench.cable.PtyCable`, the bench on
    the other; ``{"ok", "checks", ...}`` with the figures behind each check.

    Checks: the board says hello (with both models' measured latency), flies on the
    bench's EPS, completes ``pings`` commands (round trip p50/p99), telemetry flows, a
    saturating transfer reaches 80 % of the line rate, and after the board's end is
    unplugged for ``unplug_s`` while commands are sent, the board's port vanishes and
    comes back and every command still completes (COP-1 retransmits).

    Without ``workdir`` everything goes into a temporary folder that is removed at the
    end (the board log's tail is in the result when the board did not exit cleanly);
    a ``workdir`` that cannot be created raises :class:`~hil.bench.errors.HilError`.

    With ``profile_out`` it writes the board's measured per-tile latency as a board
    profile file (:func:`hil.sim.profiles.measured_profile_toml`) that a scenario names
    with ``[payload] board = "<file>"``; the board's power is ``power_w`` from a meter, or
    an assumption saying it was not measured.
    """
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="gnomon-hil-") as tmp:
            result = _run(
                Path(tmp), baud, speed, pings, unplug_s, bulk_s, timeout_s, profile_out, power_w
            )
        # the temp dir (pty links, board log) is gone: the log's tail is in the result
        result["workdir"] = None
        result["board"].pop("log", None)
        return result
    work = Path(workdir)
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HilError(f"cannot create the work folder {work}: {exc.strerror}") from None
    return _run(work, baud, speed, pings, unplug_s, bulk_s, timeout_s, profile_out, power_w)


def _run(
    tmp: Path,
    baud: int,
    speed: float,
    pings: int,
    unplug_s: float,
    bulk_s: float,
    timeout_s: float,
    profile_out: Path | None,
    power_w: float | None,
) -> dict[str, Any]:
    try:
        st = _Selftest(tmp, baud, speed, timeout_s)
    except OSError as exc:
        raise HilError(f"cannot start the self-test in {tmp}: {exc}") from None
    try:
        st.open_bench(speed)
        st.check_board_hello()
        st.check_telemetry()
        st.check_round_trips(pings)
        st.check_throughput(bulk_s)
        st.check_unplug(unplug_s)
        st.record_bench()
    except HilError as exc:
        st.result["error"] = str(exc)
    finally:
        st.stop()
    st.check_board_exit()
    if profile_out is not None:
        st.write_profile(profile_out, power_w)
    result, checks = st.result, st.checks
    ok = bool(checks) and all(checks.values())
    result["wall_seconds"] = round(time.monotonic() - st.t_start, 2)
    return {"ok": ok, "checks": checks, **result}


__all__ = ["BOARD_ENTRY", "board_summary_of", "selftest", "start_board"]
