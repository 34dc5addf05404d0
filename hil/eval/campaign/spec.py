"""A campaign spec (TOML): sweeps of seeds x scenarios x parameters, and the runs they make.

A spec is read through :func:`fsw.configfile.load_toml` into :class:`CampaignSpec`; a
wrong key or value is a :class:`~fsw.configfile.ConfigError` naming the file and the
dotted key. Each ``[[sweep]]`` is one kind of run (``sitl``, ``sched``, ``seu`` or
``constellation``) over the product of its scenarios, seeds and parameter lists;
:func:`expand` lists the runs, each with a stable id (the hash of what it runs), so a
re-run finds the runs already done.

>>> spec = decode_toml('''
... name = "demo"
... [[sweep]]
... kind = "sitl"
... scenarios = ["sitl-short"]
... seeds = { first = 1, count = 3 }
... orbits = 0.1
... params = { seu_acceleration = [0.0, 1500.0] }
... ''', CampaignSpec, "demo.toml")
>>> runs = expand(spec)
>>> len(runs), runs[0].kind, runs[0].seed, runs[0].params
(6, 'sitl', 1, (('seu_acceleration', 0.0),))
>>> runs[0].run_id == expand(spec)[0].run_id
True
>>> from fsw.configfile import ConfigError
>>> try:
...     decode_toml('name = "x"\\n[[sweep]]\\nkind = "seu"\\nparams = { degradation = [0.1] }',
...                 CampaignSpec, "bad.toml")
... except ConfigError as exc:
...     print(exc.key, "|", exc.reason)
sweep[0] | params.degradation does not apply to seu runs (it applies to: sitl, sched, constellation)
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from fsw.configfile import decode_toml, load_toml

Kind = Literal["sitl", "sched", "seu", "constellation"]
KINDS: tuple[str, ...] = ("sitl", "sched", "seu", "constellation")
Scalar = float | int | str | bool
#: Longest campaign, in runs (a typo in ``count`` should not queue a million runs).
MAX_RUNS = 100_000

_Fraction = Annotated[float, Meta(ge=0.0, le=0.99)]
_Positive = Annotated[float, Meta(gt=0.0, le=1e6)]


class _Table(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A TOML table of a spec: unknown keys are errors."""


class SeedRange(_Table, frozen=True):
    """``seeds = { first = 1, count = 200 }``: seeds first .. first + count - 1."""

    count: Annotated[int, Meta(ge=1, le=MAX_RUNS)]
    first: Annotated[int, Meta(ge=0, le=2**31)] = 1


class Params(_Table, frozen=True):
    """``params``: each key a list of values to sweep (the product of all lists is run).

    Scenario settings (``degradation``, ``capacity_wh``, ``floor_soc``, ``margin_wh``,
    ``tick_s``) change the scenario itself; SITL settings (``seu_acceleration``,
    ``downlink_bps``, the channel's error rates, the cascade thresholds) its ``[sitl]``
    table; SEU campaign settings (``flips``, ``mode``, ``target``, ``eval_tiles``) the
    fault injection; ``satellites`` and ``stations`` the constellation.
    """

    degradation: tuple[_Fraction, ...] | None = None
    capacity_wh: tuple[Annotated[float, Meta(gt=0.0, le=1e5)], ...] | None = None
    floor_soc: tuple[_Fraction, ...] | None = None
    margin_wh: tuple[Annotated[float, Meta(ge=0.0, le=1e5)], ...] | None = None
    tick_s: tuple[Annotated[float, Meta(ge=1.0, le=3600.0)], ...] | None = None
    seu_acceleration: tuple[Annotated[float, Meta(ge=0.0, le=1e6)], ...] | None = None
    downlink_bps: tuple[Annotated[float, Meta(gt=0.0, le=1e10)], ...] | None = None
    uplink_ber: tuple[Annotated[float, Meta(ge=0.0, lt=1.0)], ...] | None = None
    downlink_ber: tuple[Annotated[float, Meta(ge=0.0, lt=1.0)], ...] | None = None
    uplink_drop: tuple[Annotated[float, Meta(ge=0.0, lt=1.0)], ...] | None = None
    downlink_drop: tuple[Annotated[float, Meta(ge=0.0, lt=1.0)], ...] | None = None
    threshold_a: tuple[Annotated[float, Meta(ge=0.0, le=1.0)], ...] | None = None
    threshold_b: tuple[Annotated[float, Meta(ge=0.0, le=1.0)], ...] | None = None
    flips: tuple[Annotated[int, Meta(ge=0, le=10**6)], ...] | None = None
    mode: tuple[Literal["single", "double", "burst"], ...] | None = None
    target: tuple[Literal["any", "msb", "sign", "exponent"], ...] | None = None
    eval_tiles: tuple[Annotated[int, Meta(ge=1, le=100_000)], ...] | None = None
    satellites: tuple[Annotated[int, Meta(ge=1, le=64)], ...] | None = None
    stations: tuple[Annotated[int, Meta(ge=1, le=64)], ...] | None = None


#: Which kinds of run each parameter applies to.
SCENARIO_PARAMS = ("degradation", "capacity_wh", "floor_soc", "margin_wh", "tick_s")
SITL_PARAMS = (
    "seu_acceleration",
    "downlink_bps",
    "uplink_ber",
    "downlink_ber",
    "uplink_drop",
    "downlink_drop",
    "threshold_a",
    "threshold_b",
)
SEU_PARAMS = ("flips", "mode", "target", "eval_tiles")
CONSTELLATION_PARAMS = ("satellites", "stations")
APPLIES: dict[str, tuple[str, ...]] = {
    **{p: ("sitl", "sched", "constellation") for p in SCENARIO_PARAMS},
    **{p: ("sitl", "constellation") for p in SITL_PARAMS},
    **{p: ("seu",) for p in SEU_PARAMS},
    **{p: ("constellation",) for p in CONSTELLATION_PARAMS},
}


class Sweep(_Table, frozen=True):
    """``[[sweep]]``: one kind of run over scenarios x seeds x parameter lists.

    ``orbits`` is how long a ``sitl`` run flies; ``days`` how long a ``constellation``
    flies; ``model`` the ``.gnm`` an ``seu`` campaign attacks (its ``scenarios`` are
    ignored).
    """

    kind: Kind
    seeds: tuple[Annotated[int, Meta(ge=0, le=2**31)], ...] | SeedRange = (1,)
    scenarios: tuple[Annotated[str, Meta(min_length=1)], ...] = ("sitl-short",)
    orbits: _Positive = 1.0
    days: Annotated[float, Meta(gt=0.0, le=30.0)] = 1.0
    model: str = "fsw/ai/artifacts/cloudnet-s.gnm"
    params: Params = msgspec.field(default_factory=Params)

    def __post_init__(self) -> None:
        for name in msgspec.structs.fields(Params):
            values = getattr(self.params, name.name)
            if values is None:
                continue
            if not values:
                raise ValueError(f"params.{name.name} is an empty list")
            if self.kind not in APPLIES[name.name]:
                raise ValueError(
                    f"params.{name.name} does not apply to {self.kind} runs "
                    f"(it applies to: {', '.join(APPLIES[name.name])})"
                )

    def seed_list(self) -> tuple[int, ...]:
        if isinstance(self.seeds, SeedRange):
            return tuple(range(self.seeds.first, self.seeds.first + self.seeds.count))
        return self.seeds


class CampaignSpec(_Table, frozen=True):
    """A whole campaign spec (docs/campaigns.md)."""

    name: Annotated[str, Meta(min_length=1, max_length=200)]
    sweep: Annotated[tuple[Sweep, ...], Meta(min_length=1)]
    description: str = ""


@dataclass(slots=True, frozen=True)
class RunSpec:
    """One run of a campaign: what a worker needs to run it, and nothing machine-bound.

    ``scenario`` is the scenario as the spec names it (a bundled name or a path resolved
    against the spec's folder); ``params`` the swept values, sorted by name.
    """

    kind: str
    scenario: str
    seed: int
    params: tuple[tuple[str, Scalar], ...]
    orbits: float = 1.0
    days: float = 1.0
    model: str = ""

    @property
    def run_id(self) -> str:
        """16 hex digits of the hash of everything that makes the run what it is."""
        return hashlib.sha256(self.canonical().encode()).hexdigest()[:16]

    def canonical(self) -> str:
        doc: dict[str, Any] = {
            "kind": self.kind,
            "scenario": self.scenario,
            "seed": self.seed,
            "params": [list(p) for p in self.params],
        }
        if self.kind == "sitl":
            doc["orbits"] = self.orbits
        if self.kind == "constellation":
            doc["days"] = self.days
        if self.kind == "seu":
            doc["model"] = self.model
            del doc["scenario"]
        return json.dumps(doc, sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scenario": self.scenario,
            "seed": self.seed,
            "params": [list(p) for p in self.params],
            "orbits": self.orbits,
            "days": self.days,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunSpec:
        return cls(
            kind=str(doc["kind"]),
            scenario=str(doc["scenario"]),
            seed=int(doc["seed"]),
            params=tuple((str(k), v) for k, v in doc["params"]),
            orbits=float(doc["orbits"]),
            days=float(doc["days"]),
            model=str(doc["model"]),
        )

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)


def load_spec(path: str | Path) -> CampaignSpec:
    """Read a campaign spec file (``ConfigError`` naming the file and key if it is wrong)."""
    return load_toml(path, CampaignSpec)


def spec_hash(text: str) -> str:
    """16 hex digits naming a spec's text."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _resolve(scenario: str, base: Path | None) -> str:
    """A scenario path relative to the spec's folder, when it names an existing file."""
    if base is None or scenario.endswith(".toml") is False:
        return scenario
    p = Path(scenario)
    if not p.is_absolute() and (base / p).exists():
        return str((base / p).resolve())
    return scenario


def expand(spec: CampaignSpec, base: Path | None = None) -> list[RunSpec]:
    """Every run of ``spec``, in a fixed order (sweep, parameters, scenario, seed).

    A run that two sweeps both make is listed once. More than :data:`MAX_RUNS` runs is
    a ``ValueError``.
    """
    runs: dict[str, RunSpec] = {}
    for sw in spec.sweep:
        names = [f.name for f in msgspec.structs.fields(Params)]
        swept = [(n, getattr(sw.params, n)) for n in sorted(names) if getattr(sw.params, n)]
        combos = itertools.product(*(values for _, values in swept))
        scenarios = ("-",) if sw.kind == "seu" else sw.scenarios
        for values in combos:
            params = tuple((name, v) for (name, _), v in zip(swept, values, strict=True))
            for scenario in scenarios:
                for seed in sw.seed_list():
                    run = RunSpec(
                        kind=sw.kind,
                        scenario=_resolve(scenario, base),
                        seed=seed,
                        params=params,
                        orbits=sw.orbits,
                        days=sw.days,
                        model=sw.model if sw.kind == "seu" else "",
                    )
                    runs.setdefault(run.run_id, run)
                    if len(runs) > MAX_RUNS:
                        raise ValueError(f"the spec makes more than {MAX_RUNS} runs")
    return list(runs.values())


__all__ = [
    "APPLIES",
    "KINDS",
    "MAX_RUNS",
    "CampaignSpec",
    "Params",
    "RunSpec",
    "SeedRange",
    "Sweep",
    "decode_toml",
    "expand",
    "load_spec",
    "spec_hash",
]
