"""Running a campaign on Dask: each run one ``dask.distributed`` task, results to the table.

:func:`run_campaign` expands the spec, skips the runs the table already holds as done,
submits the rest to a Dask cluster (a ``LocalCluster`` of ``workers`` processes by
default, or an existing cluster by its scheduler address) and records each result as it
arrives, in this process only, so a run is written once. Runs are deterministic per seed
and machine-independent, so it does not matter which worker runs which.

Failures: a run that raises is recorded ``failed`` with its traceback by the worker
itself (:func:`~hil.eval.campaign.runs.execute`); a worker that dies takes its running
task with it and the scheduler runs it again elsewhere (Dask's ``allowed-failures``,
default 3); a task that kills workers that often is recorded ``failed`` with Dask's
``KilledWorker`` error. Either way the campaign goes on; a later re-run retries failed runs.

Constellation runs spread their satellites over the cluster themselves
(:mod:`hil.sim.constellation`): they run one at a time from this process, after the
tasks.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.eval.campaign.runs import code_version, derived_scenario_text, replay_command
from hil.eval.campaign.spec import CampaignSpec, RunSpec, expand, load_spec, spec_hash
from hil.eval.campaign.store import ResultStore

log = logging.getLogger(__name__)

#: (runs recorded so far this campaign, runs to do, the record just written or None)
Progress = Callable[[int, int, dict[str, Any] | None], None]
RESULTS_FILE = "campaign.sqlite"


class CampaignError(RuntimeError):
    """A campaign that cannot start (bad spec, unreachable scheduler, unusable OUT)."""


@dataclass(slots=True)
class CampaignOutcome:
    """What a ``campaign run`` did: runs in the spec, skipped (done before), run now
    (``ok``/``failed``), and the cluster it ran on."""

    total: int
    skipped: int
    ok: int = 0
    failed: int = 0
    not_recorded: int = 0
    cluster: str = ""
    workers: int = 0
    wall_s: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "skipped": self.skipped,
            "ok": self.ok,
            "failed": self.failed,
            "not_recorded": self.not_recorded,
            "cluster": self.cluster,
            "workers": self.workers,
            "wall_s": round(self.wall_s, 3),
            "failures": self.failures,
        }


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: on the cluster at ``scheduler`` (``tcp://host:8786``), or
    on a ``LocalCluster`` of ``workers`` single-threaded worker processes (default: one per
    core). The local cluster goes away with the context; a real one stays."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise CampaignError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        try:
            yield client
        finally:
            client.close()
        return
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n < 1:
        raise CampaignError(f"--workers must be >= 1, got {n}")
    # single-threaded workers: a SITL run is one Python thread (torch held to one thread)
    cluster = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        memory_limit=0,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def prepare_out(out_dir: Path, spec_text: str, runs: list[RunSpec]) -> None:
    """Create OUT and write the derived scenario files the replay commands name."""
    scen = out_dir / "scenarios"
    for run in runs:
        text = derived_scenario_text(run) if run.kind != "seu" else None
        if text is not None:
            from hil.eval.campaign.runs import scenario_file_name

            scen.mkdir(parents=True, exist_ok=True)
            path = scen / scenario_file_name(run)
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
    (out_dir / "spec.toml").write_text(spec_text, encoding="utf-8")


def load(spec_path: Path) -> tuple[CampaignSpec, str, list[RunSpec]]:
    """The spec, its text and its runs (``CampaignError`` for a bad spec)."""
    from fsw.configfile import ConfigError

    try:
        spec = load_spec(spec_path)
        text = spec_path.read_text(encoding="utf-8")
        runs = expand(spec, spec_path.parent)
    except (ConfigError, ValueError, OSError) as exc:
        raise CampaignError(str(exc)) from None
    return spec, text, runs


def run_campaign(
    spec_path: Path,
    out_dir: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> CampaignOutcome:
    """Run (or resume) the campaign of ``spec_path`` into ``out_dir`` (see module doc)."""
    import time

    t0 = time.perf_counter()
    _spec, text, runs = load(spec_path)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        prepare_out(out_dir, text, runs)
    except OSError as exc:
        raise CampaignError(f"cannot write {out_dir}: {exc}") from None
    shash = spec_hash(text)
    version = code_version()
    with ResultStore(out_dir / RESULTS_FILE) as store:
        store.add_spec(shash, text)
        store.set_meta("last_spec", shash)
        store.set_meta("last_code_version", version)
        done = store.done_ids()
        todo = [r for r in runs if r.run_id not in done]
        outcome = CampaignOutcome(total=len(runs), skipped=len(runs) - len(todo))
        if progress is not None:
            progress(0, len(todo), None)
        if todo:
            with dask_client(workers, scheduler) as client:
                outcome.cluster = str(client.scheduler.address)
                outcome.workers = len(client.scheduler_info(n_workers=-1)["workers"])
                recorder = _Recorder(store, out_dir, shash, version, outcome, progress, len(todo))
                _run_tasks(client, [r for r in todo if r.kind != "constellation"], recorder)
                _run_constellations(
                    client, [r for r in todo if r.kind == "constellation"], recorder
                )
    outcome.wall_s = time.perf_counter() - t0
    return outcome


@dataclass(slots=True)
class _Recorder:
    store: ResultStore
    out_dir: Path
    spec_hash: str
    version: str
    outcome: CampaignOutcome
    progress: Progress | None
    todo: int
    n: int = 0

    def __call__(self, run: RunSpec, result: dict[str, Any]) -> None:
        written = self.store.record(
            run,
            result,
            spec_hash=self.spec_hash,
            code_version=self.version,
            replay=replay_command(run, self.out_dir),
        )
        if not written:
            self.outcome.not_recorded += 1  # finished twice (a resubmitted task): kept once
        elif result["status"] == "ok":
            self.outcome.ok += 1
        else:
            self.outcome.failed += 1
            if len(self.outcome.failures) < 20:
                self.outcome.failures.append({"run_id": run.run_id, "error": result["error"]})
            log.warning("run %s failed: %s", run.run_id, result["error"])
        self.n += 1
        if self.progress is not None:
            self.progress(self.n, self.todo, result)


def _failure(run: RunSpec, exc: BaseException) -> dict[str, Any]:
    """The record of a task Dask itself gave up on (e.g. ``KilledWorker``)."""
    return {
        "run_id": run.run_id,
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc)),
        "summary": None,
        "figures": {},
        "timing": {},
    }


def _run_tasks(client: Any, runs: list[RunSpec], record: _Recorder) -> None:
    from distributed import as_completed

    from hil.eval.campaign.runs import execute

    if not runs:
        return
    by_key: dict[str, RunSpec] = {}
    futures = []
    for run in runs:
        fut = client.submit(execute, run.to_dict(), key=f"gnomon-run-{run.run_id}", pure=False)
        by_key[fut.key] = run
        futures.append(fut)
    for fut in as_completed(futures):
        run = by_key[fut.key]
        try:
            result = fut.result()
        except Exception as exc:  # Dask gave up on the task: recorded, the campaign goes on
            result = _failure(run, exc)
        record(run, result)
        fut.release()


def _run_constellations(client: Any, runs: list[RunSpec], record: _Recorder) -> None:
    """Constellation runs, one at a time, each spread over the cluster's workers."""
    from hil.eval.campaign.runs import execute_constellation

    for run in runs:
        try:
            result = execute_constellation(run, client)
        except Exception as exc:  # recorded, the campaign goes on
            result = _failure(run, exc)
        record(run, result)


__all__ = ["RESULTS_FILE", "CampaignError", "CampaignOutcome", "dask_client", "run_campaign"]
