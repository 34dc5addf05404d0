"""``gnomon dict docs``: the generated block of every component note follows the code."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fsw.app import build_flight
from fsw.core import Channel, Component
from fsw.core.dictionary import build_dictionary
from gnomon.cli import app
from gnomon.docgen import BEGIN, END, component_facts, generated_block, update_doc

DOCS = Path(__file__).resolve().parents[1] / "docs" / "components"


class Probe(Component):
    """A test component."""

    NAME = "probe"
    TELEMETRY = (Channel("level_pct", "f32", units="%", description="how full", id=4),)


def test_component_docs_are_up_to_date() -> None:
    res = CliRunner().invoke(app, ["dict", "docs", "--check", "--dir", str(DOCS)])
    assert res.exit_code == 0, res.stderr
    assert "up to date" in res.stderr


def test_stale_doc_is_detected(tmp_path: Path) -> None:
    (tmp_path / "cmd.md").write_text((DOCS / "cmd.md").read_text().replace("0x0201", "0x9999"))
    res = CliRunner().invoke(app, ["dict", "docs", "--check", "--dir", str(tmp_path)])
    assert res.exit_code == 1
    assert "cmd.md" in res.stderr
    assert "0x9999" in (tmp_path / "cmd.md").read_text()  # --check writes nothing


def test_docs_are_regenerated_from_an_exported_dictionary(tmp_path: Path) -> None:
    exported = tmp_path / "dict.json"
    exported.write_text(json.dumps(build_dictionary(build_flight(components={16: Probe()}))))
    docs = tmp_path / "docs"
    res = CliRunner().invoke(
        app, ["dict", "docs", "--dir", str(docs), "--dictionary", str(exported)]
    )
    assert res.exit_code == 0, res.stderr
    probe = (docs / "probe.md").read_text()
    assert probe.startswith("# `probe`: A test component.")
    assert "| `probe.level_pct` | 0x1004 | f32 | % | how full |" in probe
    again = CliRunner().invoke(
        app, ["dict", "docs", "--check", "--dir", str(docs), "--dictionary", str(exported)]
    )
    assert again.exit_code == 0, again.stderr


def test_a_file_that_is_not_a_dictionary_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"schema": "something-else"}')
    res = CliRunner().invoke(app, ["dict", "docs", "--check", "--dictionary", str(bad)])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and "not a gnomon dictionary" in res.stderr
    assert "Traceback" not in res.output


def test_update_keeps_the_hand_written_text_around_the_generated_block() -> None:
    d = build_dictionary(build_flight(components={16: Probe()}))
    facts = component_facts(d, "probe")
    text = f"# probe\n\n## Purpose\n\nMeasures.\n\n{BEGIN}\nold\n{END}\n\n## Notes\n\nKeep me.\n"
    new = update_doc(text, facts)
    assert new.startswith("# probe\n\n## Purpose\n\nMeasures.\n\n")
    assert new.endswith("\n\n## Notes\n\nKeep me.\n")
    assert generated_block(new) == facts
    assert generated_block("# no block here\n") is None


def test_docstring_examples() -> None:
    import doctest

    import gnomon.docgen

    result = doctest.testmod(gnomon.docgen)
    assert result.failed == 0 and result.attempted > 0
