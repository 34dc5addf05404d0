"""Monte Carlo campaigns (gnomon campaign, hil.eval.campaign): the results table, failed
runs, resumption, the report; slow: an external Dask scheduler and two workers on
loopback give the same results bit for bit, and a worker killed mid-campaign loses
nothing and does nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hil.eval.campaign.cli import campaign_app
from hil.eval.campaign.engine import run_campaign
from hil.eval.campaign.report import write_campaign_report
from hil.eval.campaign.runs import execute, replay_command
from hil.eval.campaign.spec import RunSpec
from hil.eval.campaign.store import ResultStore

SPEC = """name = "tiny"
[[sweep]]
kind = "sitl"
scenarios = ["sitl-short"]
seeds = {{ first = 1, count = {n} }}
orbits = 0.04
"""


def _record(run: RunSpec, status: str, figures: dict[str, float]) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "status": status,
        "summary": "{}" if status == "ok" else None,
        "figures": figures,
        "error": None if status == "ok" else "ValueError: boom",
        "traceback": None if status == "ok" else "Traceback ...\nValueError: boom",
    }


# ---------------------------------------------------------------------------- fast
def test_a_finished_run_is_in_the_table_once_and_a_failed_one_is_retried(tmp_path: Path) -> None:
    run = RunSpec("sitl", "sitl-short", 7, ())
    with ResultStore(tmp_path / "c.sqlite") as st:
        kw = {"spec_hash": "s", "code_version": "v", "replay": "gnomon sitl"}
        assert st.record(run, _record(run, "failed", {}), **kw)
        assert st.done_ids() == set()  # a failed run is run again by a re-run
        assert st.record(run, _record(run, "ok", {"min_soc": 0.8}), **kw)
        assert not st.record(run, _record(run, "ok", {"min_soc": 0.1}), **kw)  # kept once
        rows = st.rows()
    assert len(rows) == 1
    assert rows[0]["status"] == "ok" and rows[0]["min_soc"] == 0.8 and rows[0]["attempts"] == 2


def test_a_run_that_raises_is_recorded_with_its_traceback() -> None:
    run = RunSpec("sitl", "no-such-scenario", 3, (), orbits=0.01)
    rec = execute(run.to_dict())
    assert rec["status"] == "failed"
    assert "no-such-scenario" in rec["error"]
    assert "Traceback" in rec["traceback"] and rec["summary"] is None


def test_campaign_cli_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.format(n=2))
    r = CliRunner().invoke(
        campaign_app, ["run", str(spec), "--out", str(tmp_path / "o"), "--workers", "0"]
    )
    assert r.exit_code == 2 and "--workers" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[[sweep]]\nkind = "sitl"\nseeds = { count = 0 }\n')
    r = CliRunner().invoke(campaign_app, ["run", str(bad), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "seeds" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(campaign_app, ["report", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "no campaign results" in r.output


def test_report_lists_the_worst_runs_with_their_replay_and_the_value_curve(
    tmp_path: Path,
) -> None:
    kw = {"spec_hash": "s", "code_version": "v"}
    with ResultStore(tmp_path / "campaign.sqlite") as st:
        for seed, value in [(1, 20.0), (2, 3.0), (3, 12.0)]:
            run = RunSpec("sitl", "leo550-sso-6u", seed, (), orbits=1.0)
            st.record(
                run,
                _record(run, "ok", {"value_per_orbit": value, "min_soc": 0.8}),
                replay=replay_command(run, tmp_path),
                **kw,
            )
        bad = RunSpec("sitl", "leo550-sso-6u", 9, (), orbits=1.0)
        st.record(bad, _record(bad, "failed", {}), replay=replay_command(bad, tmp_path), **kw)
        for n, vpd in [(1, 100.0), (3, 270.0)]:
            run = RunSpec("constellation", "constellation-12", 1, (("satellites", n),))
            rec = _record(run, "ok", {"value_per_day": vpd, "satellites": n})
            rec["summary"] = json.dumps({"satellites": n, "stations": {"count": 2}})
            st.record(run, rec, replay=replay_command(run, tmp_path), **kw)
    doc = write_campaign_report(tmp_path, worst=2)
    html = Path(doc["report"]).read_text()
    worst = doc["figures"]["value_per_orbit"]["worst"]
    assert [w["seed"] for w in worst] == [2, 3]  # lowest value first
    assert "gnomon sitl leo550-sso-6u --orbits 1 --seed 2" in html
    assert doc["failed"] == 1 and "ValueError: boom" in html
    assert [(c["satellites"], c["value_per_day"]) for c in doc["value_per_day_curve"]] == [
        (1, 100.0),
        (3, 270.0),
    ]
    assert "value_per_day_curve.png" in doc["plots"]
    assert "value delivered per day vs satellites" in html
    assert "--satellites 3" in html


# ---------------------------------------------------------------------------- slow
def _dask(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "dask"), *args]


@pytest.fixture
def loopback_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """`dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays
    dead) on 127.0.0.1, ports chosen by the OS."""
    sfile = tmp_path / "scheduler.json"
    log = (tmp_path / "dask.log").open("wb")
    procs = [
        subprocess.Popen(
            _dask(
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(sfile),
            ),
            stdout=log,
            stderr=log,
        )
    ]
    try:
        for _ in range(600):
            if sfile.exists() and sfile.read_text().strip():
                break
            time.sleep(0.1)
        address = json.loads(sfile.read_text())["address"]
        for name in ("w1", "w2"):
            procs.append(
                subprocess.Popen(
                    _dask(
                        "worker",
                        "--scheduler-file",
                        str(sfile),
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--name",
                        name,
                        "--host",
                        "127.0.0.1",
                    ),
                    stdout=log,
                    stderr=log,
                )
            )
        from distributed import Client

        with Client(address, timeout="60s") as c:
            c.wait_for_workers(2, timeout=120)
        yield address, procs[1:]
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


def _table(out: Path) -> dict[str, tuple[str, int, str]]:
    with ResultStore(out / "campaign.sqlite", create=False) as st:
        return {r["run_id"]: (r["status"], r["seed"], r["summary"]) for r in st.rows()}


@pytest.mark.slow
def test_an_external_cluster_gives_the_local_results_bit_for_bit(
    tmp_path: Path, loopback_cluster: tuple[str, list[Any]]
) -> None:
    address, _ = loopback_cluster
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC.format(n=4))
    local = run_campaign(spec, tmp_path / "local", workers=1)
    remote = run_campaign(spec, tmp_path / "remote", scheduler=address)
    assert (local.ok, remote.ok, remote.workers) == (4, 4, 2)
    a, b = _table(tmp_path / "local"), _table(tmp_path / "remote")
    assert a == b  # same run ids, seeds and summaries, byte for byte
    again = run_campaign(spec, tmp_path / "remote", scheduler=address)
    assert (again.skipped, again.ok) == (4, 0)  # resumed: nothing run twice


@pytest.mark.slow
def test_a_worker_killed_mid_campaign_loses_nothing_and_does_nothing_twice(
    tmp_path: Path, loopback_cluster: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    address, workers = loopback_cluster
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC.format(n=6))
    killed = threading.Event()

    def progress(done: int, _total: int, record: dict[str, Any] | None) -> None:
        if record is not None and not killed.is_set():
            os.kill(workers[1].pid, signal.SIGKILL)  # the second worker, while it runs
            killed.set()

    out = run_campaign(spec, tmp_path / "out", scheduler=address, progress=progress)
    assert killed.is_set() and workers[1].wait(timeout=30) == -signal.SIGKILL
    assert (out.total, out.ok, out.failed, out.not_recorded) == (6, 6, 0, 0)
    with ResultStore(tmp_path / "out" / "campaign.sqlite", create=False) as st:
        rows = st.rows()
    assert sorted(r["seed"] for r in rows) == [1, 2, 3, 4, 5, 6]
    assert all(r["attempts"] == 1 and r["status"] == "ok" for r in rows)


def test_the_shipped_campaign_specs_expand_to_the_runs_they_promise() -> None:
    from hil.eval.campaign.engine import load

    root = Path(__file__).resolve().parents[1] / "hil" / "campaigns"
    runs = {p.stem: load(p)[2] for p in sorted(root.glob("*.toml"))}
    assert len(runs["seeds-200"]) == 200
    assert sorted({r.seed for r in runs["seeds-200"]}) == list(range(1, 201))
    curve = runs["constellation-curve"]
    assert sorted({r.param("satellites") for r in curve}) == [1, 3, 6, 12, 24]
    assert len({r.run_id for rs in runs.values() for r in rs}) == sum(map(len, runs.values()))
