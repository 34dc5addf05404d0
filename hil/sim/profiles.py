"""Board profiles: where the payload's time and energy come from.

A *frame* is a scene of ``tiles_per_frame`` tiles of ``tile_px`` x ``tile_px`` pixels (4
bands; the models' input), set in the scenario's ``[payload]`` table. The payload computer
is a *board profile* (``hil/profiles/boards.toml``, or a file ``gnomon hil selftest
--profile-out`` wrote): per power mode, the board's power and the measured or estimated
latency of one tile through each model, each figure with its source. A frame's latency is
``tiles_per_frame x tile_ms``; its energy is that latency times the mode's power.

>>> board = load_board("jetson-orin-nano")
>>> board.status, [m.name for m in board.modes]
('estimate', ['7W', '15W'])
>>> small, large = frame_latencies_s(board, 16)
>>> round(small["15W"], 6), round(large["7W"], 6)
(0.001984, 0.018336)
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from fsw.configfile import ConfigError, encode_toml, load_toml
from hil.sim.errors import ScenarioError

BOARDS_FILE = Path(__file__).resolve().parent.parent / "profiles" / "boards.toml"
#: The shipped models a profile must time (small first, large second).
MODELS: tuple[str, str] = ("cloudnet-s", "cloudnet-l")

TileMs = Annotated[float, Meta(gt=0.0, le=60_000.0)]


class _Table(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """A table of a profile file: unknown keys are errors."""


class ModeTable(_Table, frozen=True):
    """One power mode: its name, the whole board's power and per-tile latency per model."""

    name: Annotated[str, Meta(min_length=1)]
    power_w: Annotated[float, Meta(gt=0.0, le=999.0)]
    power_source: Annotated[str, Meta(min_length=1)]
    tile_ms: dict[str, TileMs]

    def __post_init__(self) -> None:
        missing = [m for m in MODELS if m not in self.tile_ms]
        if missing:
            raise ValueError(f"mode {self.name!r}: no tile_ms for {', '.join(missing)}")


class BoardTable(_Table, frozen=True):
    """One board: measured or estimated, where from, and its power modes."""

    status: Literal["measured", "estimate"]
    source: Annotated[str, Meta(min_length=1)]
    modes: Annotated[tuple[ModeTable, ...], Meta(min_length=1)]
    description: str = ""
    cpu_flags: str = ""


class ProfileFile(_Table, frozen=True):
    """A profile file: ``[boards.<name>]`` tables."""

    boards: dict[str, BoardTable]


@dataclass(slots=True, frozen=True)
class BoardMode:
    """A power mode of a board profile."""

    name: str
    power_w: float
    power_source: str
    tile_ms: dict[str, float]


@dataclass(slots=True, frozen=True)
class BoardProfile:
    """A payload computer: name, ``measured`` or ``estimate``, source, power modes."""

    name: str
    status: str
    source: str
    modes: tuple[BoardMode, ...]
    description: str = ""
    cpu_flags: str = ""
    file: str = ""

    def mode(self, name: str) -> BoardMode:
        for m in self.modes:
            if m.name == name:
                return m
        raise ScenarioError(f"board {self.name!r} has no power mode {name!r}")


def _boards(path: Path) -> dict[str, BoardProfile]:
    try:
        f = load_toml(path, ProfileFile)
    except ConfigError as exc:
        raise ScenarioError(str(exc)) from None
    return {
        name: BoardProfile(
            name=name,
            status=b.status,
            source=b.source,
            modes=tuple(
                BoardMode(m.name, m.power_w, m.power_source, dict(m.tile_ms)) for m in b.modes
            ),
            description=b.description,
            cpu_flags=b.cpu_flags,
            file=str(path),
        )
        for name, b in f.boards.items()
    }


def bundled_boards() -> list[str]:
    """Names of the board profiles shipped in hil/profiles/boards.toml."""
    return sorted(_boards(BOARDS_FILE))


def load_board(name_or_path: str | Path) -> BoardProfile:
    """A bundled board by name, or the (single) board of a profile file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        boards = _boards(p) if p.exists() else {}
        if not p.exists():
            raise ScenarioError(f"board profile file {str(p)!r} not found")
        if len(boards) != 1:
            raise ScenarioError(f"{p}: a board profile file holds exactly one [boards.<name>]")
        return next(iter(boards.values()))
    shipped = _boards(BOARDS_FILE)
    if str(name_or_path) not in shipped:
        raise ScenarioError(
            f"board {str(name_or_path)!r} not found (bundled: {', '.join(sorted(shipped))}; "
            "or a profile file written by `gnomon hil selftest --profile-out`)"
        )
    return shipped[str(name_or_path)]


def frame_latencies_s(
    board: BoardProfile, tiles_per_frame: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Per-frame latency (s) of the small and the large model in each power mode."""
    small = {m.name: tiles_per_frame * m.tile_ms[MODELS[0]] / 1e3 for m in board.modes}
    large = {m.name: tiles_per_frame * m.tile_ms[MODELS[1]] / 1e3 for m in board.modes}
    return small, large


def measured_profile_toml(
    name: str,
    inference_ms: dict[str, dict[str, float]],
    *,
    power_w: float,
    power_source: str,
    host: str,
    mode: str = "board",
) -> str:
    """A one-board profile file from a board's measured per-tile latency (its hello's
    ``inference_ms``: p50 of one tile at a time per model), for a scenario to name."""
    missing = [m for m in MODELS if "p50_ms" not in inference_ms.get(m, {})]
    if missing:
        raise ScenarioError(f"the board measured no latency for {', '.join(missing)}")
    today = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
    runs = inference_ms[MODELS[0]].get("runs", "?")
    board = BoardTable(
        status="measured",
        source=(
            f"gnomon hil selftest on {host} ({today}): p50 of {runs} single-tile inferences "
            "per model, measured by the board at start-up"
        ),
        modes=(
            ModeTable(
                name=mode,
                power_w=power_w,
                power_source=power_source,
                tile_ms={m: float(inference_ms[m]["p50_ms"]) for m in MODELS},
            ),
        ),
        description=f"measured on {host}",
    )
    return encode_toml(ProfileFile({name: board}))


__all__ = [
    "BOARDS_FILE",
    "MODELS",
    "BoardMode",
    "BoardProfile",
    "bundled_boards",
    "frame_latencies_s",
    "load_board",
    "measured_profile_toml",
]
