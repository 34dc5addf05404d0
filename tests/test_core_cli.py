"""CLI: ``gnomon dict export``, ``gnomon dict docs --check``, ``gnomon fsw sim``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fsw.cli import dict_app, fsw_app

DOCS = Path(__file__).resolve().parents[1] / "docs" / "components"


def test_dict_export_prints_one_json_object() -> None:
    res = CliRunner().invoke(dict_app, ["export", "--format", "json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["schema"] == "gnomon-dictionary"
    assert any(c["name"] == "PING" for c in d["commands"])


def test_dict_export_to_file(tmp_path: Path) -> None:
    out = tmp_path / "dict.json"
    res = CliRunner().invoke(dict_app, ["export", "--out", str(out), "--indent", "0"])
    assert res.exit_code == 0
    assert json.loads(out.read_text())["content_hash"].startswith("sha256:")


def test_unsupported_format_is_a_one_line_error() -> None:
    res = CliRunner().invoke(dict_app, ["export", "--format", "xml"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: unsupported format 'xml': only json is available"
    assert "Traceback" not in res.output


def test_component_docs_are_up_to_date() -> None:
    res = CliRunner().invoke(dict_app, ["docs", "--check", "--dir", str(DOCS)])
    assert res.exit_code == 0, res.stderr


def test_stale_doc_is_detected(tmp_path: Path) -> None:
    (tmp_path / "cmd.md").write_text((DOCS / "cmd.md").read_text().replace("0x0201", "0x9999"))
    res = CliRunner().invoke(dict_app, ["docs", "--check", "--dir", str(tmp_path)])
    assert res.exit_code == 1
    assert "cmd.md" in res.stderr


def test_fsw_sim_json() -> None:
    res = CliRunner().invoke(fsw_app, ["sim", "--seconds", "20", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["cycles"] == 200
    assert summary["tm_by_type"]["3,25"] >= 20
    assert summary["mode"] == "NOMINAL"


def test_fsw_sim_bad_input() -> None:
    res = CliRunner().invoke(fsw_app, ["sim", "--seconds", "-5"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: --seconds must be positive"
