"""Every shipped config file (scenarios with their [sitl] tables, the link-key file) loads
to exactly the values recorded in ``tests/golden/config_values.json``.

The record was written by the hand-written parsers before the schema-driven config layer
(:mod:`fsw.configfile`) replaced them, so this test is what says the new layer reads every
file the old way. Regenerate only for a deliberate change of a file:
``python tests/test_config_golden.py > tests/golden/config_values.json``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from pathlib import Path
from typing import Any

import pytest

from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from hil.sim.scenario import bundled_scenarios, load_scenario
from hil.sim.sitl_config import make_config

GOLDEN = Path(__file__).parent / "golden" / "config_values.json"
#: Paths inside the checkout are recorded relative to it (the record holds in any clone).
ROOT = str(Path(__file__).resolve().parents[1]) + "/"


def plain(obj: Any) -> Any:
    """A JSON-able, type-tagged picture of ``obj`` (floats exact, bytes as hex)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            "__type__": type(obj).__name__,
            **{f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)},
        }
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, bytes):
        return {"__bytes__": obj.hex()}
    if isinstance(obj, enum.Enum):
        return plain(obj.value)
    if isinstance(obj, float):
        return {"__float__": repr(obj)} if not math.isfinite(obj) else obj
    if isinstance(obj, str) and obj.startswith(ROOT):
        return "<checkout>/" + obj[len(ROOT) :]
    if isinstance(obj, bool | int | str) or obj is None:
        return obj
    raise TypeError(f"no plain form for {type(obj).__name__}")


ENTRIES = [
    "link:test_link.toml",
    *(f"{kind}:{name}" for name in bundled_scenarios() for kind in ("scenario", "sitl")),
]


def current_value(entry: str) -> Any:
    kind, name = entry.split(":", 1)
    if kind == "link":
        return plain(LinkConfig.load(TEST_KEY_FILE))
    return plain(load_scenario(name) if kind == "scenario" else make_config(name))


def _golden() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return doc


def test_every_shipped_file_is_recorded() -> None:
    assert sorted(_golden()) == sorted(ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES)
def test_file_loads_to_the_recorded_values(entry: str) -> None:
    now, then = current_value(entry), _golden()[entry]
    assert now == then
    # and of the same types (1 and 1.0 are equal, but an int field must stay an int)
    assert json.dumps(now, sort_keys=True) == json.dumps(then, sort_keys=True)


if __name__ == "__main__":
    import sys

    values = {entry: current_value(entry) for entry in ENTRIES}
    sys.stdout.write(json.dumps(values, indent=1, sort_keys=True) + "\n")
