"""CLI: ``gnomon dict export``, ``gnomon fsw sim``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fsw.cli import dict_app, fsw_app


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
    assert res.stderr.strip() == "error: unsupported format 'xml': use json"
    assert "Traceback" not in res.output
    from gnomon.cli import app  # mounted in `gnomon`, the ground's formats are offered

    res = CliRunner().invoke(app, ["dict", "export", "--format", "xml"])
    assert res.stderr.strip() == "error: unsupported format 'xml': use json, xtce"


def test_fsw_sim_json() -> None:
    res = CliRunner().invoke(fsw_app, ["sim", "--seconds", "20", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["cycles"] == 200
    assert summary["tm_by_type"]["3,25"] >= 20
    assert summary["mode"] == "NOMINAL"


@pytest.mark.parametrize("seconds", ["-5", "0", "inf", "nan", "1e9"])
def test_fsw_sim_refuses_a_run_that_would_not_end_or_makes_no_sense(seconds: str) -> None:
    res = CliRunner().invoke(fsw_app, ["sim", "--seconds", seconds])
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("error: --seconds must be within 0..2.592e+06 (30 days)")


def test_fsw_run_refuses_what_it_cannot_fly_with_in_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(fsw_app, ["run", "--duration", "-1"])
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: --duration must be positive"
    missing = tmp_path / "nowhere.toml"
    res = CliRunner().invoke(fsw_app, ["run", "--key-file", str(missing), "--duration", "1"])
    assert res.exit_code == 2
    assert res.stderr.strip().startswith(f"error: cannot load key file {missing}")
    res = CliRunner().invoke(fsw_app, ["run", "--link", "bogus://x", "--duration", "1"])
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("error: 'bogus://x': unknown link")
    assert "Traceback" not in res.output
