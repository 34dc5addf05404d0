"""One campaign run, as a Dask worker runs it: a SITL mission, a scheduler evaluation or
an SEU campaign, its summary, its headline figures and the command that replays it.

:func:`execute` takes a run as a plain dict (what travels to a worker) and returns a
plain dict; it never raises for a failed run: the error and its traceback come back in
the record, so one bad run never stops a campaign. The summary it returns is exactly what
the replay command prints with ``--json`` (for SITL: ``summary.json``), less the fields
that depend on the machine (wall-clock times), which come back apart in ``timing``.

>>> from hil.eval.campaign.spec import RunSpec
>>> run = RunSpec("sitl", "sitl-short", 7, (("seu_acceleration", 0.0),), orbits=0.5)
>>> for part in replay_command(run, Path("out/c")).split(" --"):
...     print(part)
gnomon sitl out/c/scenarios/sitl-short-bd84ec1fc1556a8b.toml
orbits 0.5
seed 7
out out/replay/bd84ec1fc1556a8b
>>> headline("sitl", {"battery": {"min_soc": 0.81, "floor_violations": 0}})["min_soc"]
0.81
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from fsw.configfile import encode_toml
from hil.eval.campaign.spec import SCENARIO_PARAMS, SITL_PARAMS, RunSpec

#: The figures every run is reduced to (columns of the results table), and for each the
#: direction that makes a run worse (``-1``: lower is worse).
HEADLINE: dict[str, int] = {
    "value_per_orbit": -1,
    "value_vs_oracle": -1,
    "value_per_day": -1,
    "floor_violations": +1,
    "min_soc": -1,
    "seu_injected": 0,
    "seu_detected": 0,
    "seu_missed": +1,
    "seu_repaired": 0,
    "commands_sent": 0,
    "commands_completed": 0,
    "commands_not_completed": +1,
    "files_delivered": 0,
    "satellites": 0,
    "station_conflicts": 0,
}
#: SITL summary fields that depend on the machine (kept out of the compared summary).
WALL_FIELDS = ("wall_seconds", "sim_wall_ratio", "inference_latency_ms")

_SCENARIO_TABLE = {
    "degradation": ("array", "degradation"),
    "capacity_wh": ("battery", "capacity_wh"),
    "floor_soc": ("policy", "floor_soc"),
    "margin_wh": ("policy", "margin_wh"),
    "tick_s": ("policy", "tick_s"),
}


# ---------------------------------------------------------------------------- versions
def _package_root() -> Path:
    import hil

    return Path(hil.__file__).resolve().parent.parent


def content_hash() -> str:
    """12 hex digits of the hash of the code that runs (every ``.py``, scenario and model
    file of fsw, ground, hil and models), so two machines can tell they ran the same code."""
    root = _package_root()
    h = hashlib.sha256()
    for pkg in ("fsw", "ground", "hil", "models"):
        for path in sorted((root / pkg).rglob("*")):
            if path.suffix in (".py", ".toml", ".gnm", ".npy") and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:12]


def code_version() -> str:
    """``git describe`` of the checkout (or the package version) plus the content hash."""
    root = _package_root()
    described = None
    if (root / ".git").exists():
        try:
            out = subprocess.run(
                ["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            described = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            described = None
    if described is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            described = f"gnomon {version('gnomon')}"
        except PackageNotFoundError:
            described = "gnomon (unpackaged)"
    return f"{described} {content_hash()}"


# ---------------------------------------------------------------------------- scenarios
def derived_scenario_text(run: RunSpec) -> str | None:
    """The TOML of the scenario a run flies, when its parameters change the named one
    (None: it flies the named scenario as it is)."""
    from hil.sim.scenario import read_scenario_file
    from hil.sim.scenario_file import SitlTable

    changes = {k: v for k, v in run.params if k in SCENARIO_PARAMS or k in SITL_PARAMS}
    if not changes:
        return None
    f = read_scenario_file(run.scenario)
    for key, value in changes.items():
        if key in _SCENARIO_TABLE:
            table, field = _SCENARIO_TABLE[key]
            sub = msgspec.structs.replace(getattr(f, table), **{field: value})
            f = msgspec.structs.replace(f, **{table: sub})
    sitl = {k: v for k, v in changes.items() if k in SITL_PARAMS}
    if sitl:
        base = f.sitl if f.sitl is not None else SitlTable()
        f = msgspec.structs.replace(f, sitl=msgspec.structs.replace(base, **sitl))
    return encode_toml(f)


def scenario_file_name(run: RunSpec) -> str:
    stem = Path(run.scenario).name.removesuffix(".toml")
    return f"{stem}-{run.run_id}.toml"


def replay_command(run: RunSpec, out_dir: Path) -> str:
    """The command that replays ``run`` (``out_dir``: the campaign's folder)."""
    scenario = run.scenario
    if derived_scenario_text(run) is not None:
        scenario = str(out_dir / "scenarios" / scenario_file_name(run))
    if run.kind == "sitl":
        return (
            f"gnomon sitl {scenario} --orbits {run.orbits:g} --seed {run.seed} "
            f"--out out/replay/{run.run_id}"
        )
    if run.kind == "sched":
        return f"gnomon sched eval --scenario {scenario} --seed {run.seed} --json"
    if run.kind == "seu":
        cfg = _seu_config(run)
        return (
            f"gnomon seu campaign --model {run.model} --flips {cfg.flips} --mode {cfg.mode} "
            f"--target {cfg.target} --seed {run.seed} --eval-tiles {cfg.eval_tiles} --json"
        )
    extra = "".join(
        f" --{name} {run.param(name)}"
        for name in ("satellites", "stations")
        if run.param(name) is not None
    )
    return (
        f"gnomon campaign constellation {scenario}{extra} --days {run.days:g} "
        f"--seed {run.seed} --out out/replay/{run.run_id}"
    )


# ---------------------------------------------------------------------------- kinds
def _sitl(run: RunSpec, path: str, _client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    import torch

    from hil.sim.sitl import Sitl
    from hil.sim.sitl_config import make_config

    torch.set_num_threads(1)  # as `gnomon sitl` runs (run_sitl): same speed, same results
    sitl = Sitl(path, make_config(path, orbits=run.orbits, seed=run.seed))
    result = sitl.run()
    figures = {"results_value": results_value(sitl)}
    return result.summary, figures


def results_value(sitl: Any) -> float:
    """The value of the frames whose keep answer reached the ground: the sum of their
    target priorities (the scheduler's value of a frame), 3 decimals."""
    if sitl.ground is None:
        return 0.0
    prio = {f.frame_id & 0xFFFFFFFF: f.priority for f in sitl.world.camera.frames}
    total = sum(prio.get(fid, 0.0) for fid, keep in sitl.ground.results.items() if keep)
    return round(total, 3)


def _sched(run: RunSpec, path: str, _client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from hil.eval.sched.metrics import evaluate_named, scenario_metrics

    ev = evaluate_named(path, run.seed)
    name = ev.timeline.scenario.name
    summary = {"scenario": name, "seed": run.seed, "policies": scenario_metrics(ev)}
    return summary, {"imaging_orbits": ev.timeline.imaging_orbits}


def _seu_config(run: RunSpec) -> Any:
    from models.campaign import CampaignConfig

    base = CampaignConfig(seed=run.seed)
    return CampaignConfig(
        flips=int(run.param("flips", base.flips)),
        mode=str(run.param("mode", base.mode)),
        target=str(run.param("target", base.target)),
        seed=run.seed,
        eval_tiles=int(run.param("eval_tiles", base.eval_tiles)),
    )


def _seu(run: RunSpec, _path: str, _client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from models.campaign import run_campaign

    model = Path(run.model)
    if not model.is_absolute() and not model.exists():
        model = _package_root() / model
    rep = run_campaign(model, _seu_config(run))
    rep["file"] = run.model
    return rep, {}


def _constellation(run: RunSpec, path: str, client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    from hil.sim.constellation import run_constellation

    result = run_constellation(
        path,
        satellites=run.param("satellites"),
        stations=run.param("stations"),
        days=run.days,
        seed=run.seed,
        client=client,
    )
    return result.summary, {}


_KINDS: dict[str, Callable[[RunSpec, str, Any], tuple[dict[str, Any], dict[str, Any]]]] = {
    "sitl": _sitl,
    "sched": _sched,
    "seu": _seu,
    "constellation": _constellation,
}


def _split_timing(kind: str, summary: dict[str, Any]) -> dict[str, Any]:
    """Take the machine-dependent fields out of ``summary`` (in place); return them."""
    names = {"sitl": WALL_FIELDS, "seu": ("seconds",), "constellation": ("wall_seconds",)}
    return {k: summary.pop(k) for k in names.get(kind, ()) if k in summary}


def execute(doc: dict[str, Any], client: Any = None) -> dict[str, Any]:
    """Run one campaign run (a :meth:`RunSpec.to_dict`); a record, never an exception.

    The record: ``run_id``, ``status`` (``ok`` or ``failed``), ``summary`` (canonical
    JSON text, deterministic for the run), ``figures`` (headline figures), ``timing``
    (wall-clock fields), ``error`` and ``traceback`` (failed runs), ``worker``,
    ``worker_code`` (the content hash of the code that ran) and ``wall_s``.
    """
    t0 = time.perf_counter()
    run = RunSpec.from_dict(doc)
    record: dict[str, Any] = {
        "run_id": run.run_id,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "error": None,
        "traceback": None,
    }
    try:
        record["worker_code"] = content_hash()
        text = derived_scenario_text(run) if run.kind != "seu" else None
        with tempfile.TemporaryDirectory(prefix="gnomon-run-") as tmp:
            path = run.scenario
            if text is not None:
                path = str(Path(tmp) / scenario_file_name(run))
                Path(path).write_text(text, encoding="utf-8")
            summary, extra = _KINDS[run.kind](run, path, client)
        record["timing"] = _split_timing(run.kind, summary)
        record["summary"] = json.dumps(summary, sort_keys=True, separators=(",", ":"))
        record["figures"] = {**headline(run.kind, summary, extra), **extra}
        record["status"] = "ok"
    except Exception as exc:  # a failed run is a result, not the end of the campaign
        record.update(
            status="failed",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
            summary=None,
            figures={},
            timing={},
        )
        record.setdefault("worker_code", None)
    record["wall_s"] = round(time.perf_counter() - t0, 3)
    return record


def execute_constellation(run: RunSpec, client: Any) -> dict[str, Any]:
    """:func:`execute` for a constellation run, its satellites spread over ``client``'s
    workers (this process drives the lock-step windows)."""
    return execute(run.to_dict(), client=client)


# ---------------------------------------------------------------------------- figures
def _get(doc: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def headline(
    kind: str,
    summary: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, float | None]:
    """The headline figures of a run's summary; a figure the summary lacks is None.

    SITL: ``value_per_orbit`` is the summary's ``value_delivered_per_orbit`` when it has
    one (files delivered, from the on-board storage), else the value of the keep answers
    that reached the ground per orbit; ``files_delivered`` from ``files.delivered``.
    Scheduler evaluations: the ``gnomon`` policy's figures. SEU campaigns: upsets injected,
    detected, repaired. Constellations: ``value_per_day``, satellites, station conflicts.
    """
    extra = extra or {}
    out: dict[str, float | None] = dict.fromkeys(HEADLINE)
    if kind == "sitl":
        _sitl_headline(out, summary, extra)
    elif kind == "sched":
        g = _get(summary, "policies.gnomon") or {}
        orbits = _num(extra.get("imaging_orbits"))
        value = _num(g.get("value"))
        out["value_per_orbit"] = value / orbits if value is not None and orbits else None
        out["value_vs_oracle"] = _num(g.get("value_vs_oracle"))
        out["floor_violations"] = _num(g.get("floor_violations"))
        out["min_soc"] = _num(g.get("min_soc"))
    elif kind == "seu":
        out["seu_injected"] = _num(summary.get("flips_injected"))
        out["seu_detected"] = _num(summary.get("detected"))
        out["seu_repaired"] = _num(summary.get("repaired"))
        if out["seu_injected"] is not None and out["seu_detected"] is not None:
            out["seu_missed"] = out["seu_injected"] - out["seu_detected"]
    else:
        for key in ("value_per_day", "satellites", "floor_violations", "min_soc"):
            out[key] = _num(summary.get(key))
        out["station_conflicts"] = _num(_get(summary, "stations.conflicts"))
        out["commands_sent"] = _num(_get(summary, "commands.sent"))
        out["commands_completed"] = _num(_get(summary, "commands.completed"))
        _not_completed(out)
    return out


def _sitl_headline(
    out: dict[str, float | None], summary: dict[str, Any], extra: dict[str, Any]
) -> None:
    value = _num(summary.get("value_delivered_per_orbit"))
    if value is None:
        results = _num(extra.get("results_value"))
        orbits = _num(summary.get("orbits"))
        value = results / orbits if results is not None and orbits else None
    out["value_per_orbit"] = value
    out["floor_violations"] = _num(_get(summary, "battery.floor_violations"))
    out["min_soc"] = _num(_get(summary, "battery.min_soc"))
    out["seu_injected"] = _num(_get(summary, "seu.injected"))
    out["seu_detected"] = _num(_get(summary, "seu.detected"))
    out["seu_repaired"] = _num(_get(summary, "seu.repaired"))
    if out["seu_injected"] is not None and out["seu_detected"] is not None:
        out["seu_missed"] = out["seu_injected"] - out["seu_detected"]
    out["commands_sent"] = _num(_get(summary, "commands.sent"))
    out["commands_completed"] = _num(_get(summary, "commands.completed"))
    _not_completed(out)
    out["files_delivered"] = _num(_get(summary, "files.delivered"))


def _not_completed(out: dict[str, float | None]) -> None:
    sent, done = out["commands_sent"], out["commands_completed"]
    if sent is not None and done is not None:
        out["commands_not_completed"] = sent - done


__all__ = [
    "HEADLINE",
    "code_version",
    "content_hash",
    "derived_scenario_text",
    "execute",
    "execute_constellation",
    "headline",
    "replay_command",
    "results_value",
]
