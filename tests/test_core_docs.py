"""The component example in docs/core.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "core.md"


def test_write_a_component_example_runs() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## How to write a component", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)  # asserts inside
    fs = namespace["fs"]
    assert fs.components["heater"].component_id == 16  # type: ignore[attr-defined]
