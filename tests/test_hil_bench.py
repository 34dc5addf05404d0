"""The bench: the pty cable, the self-test (board subprocess + bench, unplug/replug), the
CLI, and a test on a real board (marked ``hil``, needs ``--hil-port``)."""

from __future__ import annotations

import json
import os
import select
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hil.bench.bench import Bench
from hil.bench.cable import PtyCable, line_rate_bytes_s
from hil.bench.cli import hil_app
from hil.bench.errors import HilError
from hil.bench.selftest import selftest

pytestmark = pytest.mark.timeout(180)


def _read(fd: int, n: int, timeout_s: float = 3.0) -> bytes:
    out = b""
    while len(out) < n:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        if not ready:
            break
        out += os.read(fd, n - len(out))
    return out


def test_pty_cable_relays_both_ways_and_can_be_unplugged(tmp_path: Path) -> None:
    cable = PtyCable(tmp_path / "board", tmp_path / "bench", baud=None)
    try:
        board = os.open(tmp_path / "board", os.O_RDWR | os.O_NOCTTY)
        bench = os.open(tmp_path / "bench", os.O_RDWR | os.O_NOCTTY)
        os.write(board, b"\x1a\xcf\xfc\x1d" * 100)
        assert _read(bench, 400) == b"\x1a\xcf\xfc\x1d" * 100
        os.write(bench, b"\xeb\x90up")
        assert _read(board, 4) == b"\xeb\x90up"
        cable.unplug("board")
        assert not (tmp_path / "board").exists()
        with pytest.raises(OSError):  # the board's port is gone (EIO on the old fd)
            os.read(board, 1)
        os.close(board)
        os.write(bench, b"lost")
        cable.wait_idle()
        cable.plug("board")
        board = os.open(tmp_path / "board", os.O_RDWR | os.O_NOCTTY)
        os.write(bench, b"after")
        assert _read(board, 5) == b"after"
        assert cable.stats["dropped_bytes"] == 4 and cable.stats["unplugs"] == 1
        os.close(board)
        os.close(bench)
    finally:
        cable.close()
    with pytest.raises(HilError, match="no cable end"):
        cable.unplug("middle")


def test_selftest_over_a_pty_with_unplug_and_replug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where its temp dir goes
    result = selftest()
    assert list(tmp_path.iterdir()) == []  # its temp dir is gone again
    assert result["workdir"] is None and "log" not in result["board"]
    assert result["checks"] and all(result["checks"].values()), json.dumps(result, indent=1)
    assert result["ok"] is True
    assert {
        "commands_complete",
        "telemetry_flows",
        "unplug_commands_completed",
        "unplug_cop1_retransmitted",
        "board_port_vanished_and_reopened",
    } <= set(result["checks"])
    assert 0.8 <= result["link_efficiency"] <= 1.0
    rtt = result["rtt_ms"]
    assert rtt["n"] == 20 and 0 < rtt["p50"] <= rtt["p99"]
    assert set(result["board_inference_ms"]) == {"cloudnet-s", "cloudnet-l"}
    assert result["unplug"]["completed"] == result["unplug"]["commands"] == 3
    assert result["board"]["cable"]["disconnects"] >= 1


def test_selftest_with_a_workdir_that_cannot_be_made_says_why(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(HilError, match=r"cannot create the work folder .*a-file/sub"):
        selftest(workdir=blocker / "sub")
    result = CliRunner().invoke(hil_app, ["selftest", "--workdir", str(blocker / "sub")])
    assert result.exit_code == 2
    assert "error: cannot create the work folder" in result.stderr
    assert "Traceback" not in result.output


def test_bench_without_a_board_waits_then_says_so(tmp_path: Path) -> None:
    bench = Bench(
        f"serial://{tmp_path / 'nothing'}?baud=921600",
        "sitl-short",
        orbits=0.01,
        speed=10.0,
        script=False,
    )
    try:
        assert bench.transport.status == "waiting"  # no port yet: no exception
        assert bench.wait_for_board(0.3) is False
        with pytest.raises(HilError, match="no board answered"):
            bench.run(board_timeout_s=0.3)
    finally:
        bench.close()


def test_bench_rejects_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(HilError, match="speed"):
        Bench(f"serial://{tmp_path / 'x'}", speed=0.0)
    with pytest.raises(HilError, match="no-such-scenario"):
        Bench(f"serial://{tmp_path / 'x'}", "no-such-scenario")


def test_cli_run_reports_a_missing_board(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        hil_app,
        [
            "run",
            "--port",
            str(tmp_path / "ttyUSB9"),
            "--scenario",
            "sitl-short",
            "--orbits",
            "0.01",
            "--board-timeout",
            "0.3",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 2
    assert "no board answered" in res.output


def test_line_rate() -> None:
    assert line_rate_bytes_s(115200) == 11520.0


@pytest.mark.hil
def test_real_board_answers(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """With ``--hil-port /dev/ttyUSB0`` and ``gnomon fsw run --sim-bridge`` on the board."""
    port = request.config.getoption("--hil-port")
    bench = Bench(
        port if "://" in port else f"serial://{port}?baud=921600",
        "sitl-short",
        orbits=0.05,
        speed=1.0,
        out_dir=tmp_path,
    )
    try:
        summary = bench.run(board_timeout_s=60.0)
    finally:
        bench.close()
    assert summary["commands"]["completed"] == summary["commands"]["sent"]
    assert summary["timing"]["board_overruns"] == 0
    assert set(summary["timing"]["board_inference_ms"]) == {"cloudnet-s", "cloudnet-l"}
