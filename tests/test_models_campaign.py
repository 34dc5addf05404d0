"""SEU campaigns and the ``gnomon model`` / ``gnomon seu`` commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fsw.ai import gnm, shipped_dir
from models.campaign import CampaignConfig, run_campaign
from models.cli import campaign_lines, campaign_table, model_app, seu_app
from models.errors import ModelError

ARTIFACTS = shipped_dir()
SMALL = ARTIFACTS / "cloudnet-s.gnm"
LARGE = ARTIFACTS / "cloudnet-l.gnm"

app = typer.Typer()
app.add_typer(model_app, name="model")
app.add_typer(seu_app, name="seu")
runner = CliRunner()


@pytest.mark.parametrize("path,mode", [(SMALL, "single"), (SMALL, "double"), (LARGE, "burst")])
def test_campaign_detects_and_repairs_every_flip(path: Path, mode: str) -> None:
    cfg = CampaignConfig(
        flips=40,
        mode=mode,
        eval_tiles=64,
        probe_tiles=8,
        bers=(1e-3,),
        ber_trials=1,
        activation_rates=(1e-3,),
    )
    rep = run_campaign(path, cfg)
    assert rep["flips_injected"] == 40 and rep["failures"] == []
    assert rep["detected_pct"] == rep["repaired_pct"] == 100.0
    assert rep["outputs_identical_after_repair"] is True
    assert rep["bits_flipped"] == 40 * {"single": 1, "double": 2, "burst": 4}[mode]
    (row,) = rep["ber"]
    assert row["bits_flipped_mean"] > 0
    assert row["accuracy_protected"] == rep["golden_accuracy"]
    assert row["accuracy_unprotected"] <= rep["golden_accuracy"]
    assert rep["fp32_accuracy"] is not None and "accuracy_fp32_unprotected" in row
    json.dumps(rep)


def test_campaign_rejects_bad_config() -> None:
    with pytest.raises(ModelError):
        run_campaign(SMALL, CampaignConfig(mode="triple"))
    with pytest.raises(ModelError):
        run_campaign(SMALL, CampaignConfig(eval_tiles=0))


def test_cli_verify_ok_and_names_flipped_block(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["model", "verify", str(SMALL)])
    assert ok.exit_code == 0 and "OK" in ok.output
    data = bytearray(SMALL.read_bytes())
    h = gnm.decode(bytes(data)).header
    data[h.arena_offset + 3 * h.block_size + 1] ^= 0x20
    bad = tmp_path / "bad.gnm"
    bad.write_bytes(bytes(data))
    res = runner.invoke(app, ["model", "verify", str(bad)])
    assert res.exit_code == 1 and "block 3" in res.output
    # one line per problem, however narrow the terminal; the block is named once
    assert "block 3: block 3" not in res.output and res.output.count("\n") == 2
    res = runner.invoke(app, ["model", "verify", str(bad), "--json"])
    doc = json.loads(res.stdout)
    assert res.exit_code == 1 and doc["ok"] is False
    assert doc["problems"][0]["block"] == 3 and doc["problems"][0]["region"] == "arena"


def test_cli_inspect_json_lists_ops_tensors_and_checksums() -> None:
    res = runner.invoke(app, ["model", "inspect", str(LARGE), "--json"])
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert [op["kind"] for op in doc["ops"]][:2] == ["quantize", "conv2d"]
    assert len(doc["block_crc32c"]) == doc["blocks"]
    assert sum(t["nbytes"] for t in doc["tensors"]) <= doc["arena_bytes"]
    human = runner.invoke(app, ["model", "inspect", str(SMALL)])
    assert human.exit_code == 0 and "conv1.w" in human.output and "CRC-32C" in human.output


def test_cli_sign_then_verify_with_key(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(b"a-long-enough-operator-key")
    out = tmp_path / "signed.gnm"
    res = runner.invoke(
        app, ["model", "sign", str(SMALL), "--key-file", str(key), "--out", str(out)]
    )
    assert res.exit_code == 0
    assert runner.invoke(app, ["model", "verify", str(out), "--key-file", str(key)]).exit_code == 0
    other = tmp_path / "other"
    other.write_bytes(b"another-operator-key-x")
    res = runner.invoke(app, ["model", "verify", str(out), "--key-file", str(other)])
    assert res.exit_code == 1 and "hmac" in res.output.lower()


def test_cli_verify_of_a_signed_file_without_a_key_says_the_signature_went_unchecked(
    tmp_path: Path,
) -> None:
    key = tmp_path / "key"
    key.write_bytes(b"a-long-enough-operator-key")
    out = tmp_path / "signed.gnm"
    runner.invoke(app, ["model", "sign", str(SMALL), "--key-file", str(key), "--out", str(out)])
    res = runner.invoke(app, ["model", "verify", str(out)])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "SIGNED but its signature was NOT checked (give --key-file to check it)" in text
    doc = json.loads(runner.invoke(app, ["model", "verify", str(out), "--json"]).stdout)
    assert doc["ok"] is True and doc["signed"] is True and doc["signature"] == "unchecked"
    doc = json.loads(
        runner.invoke(app, ["model", "verify", str(out), "--key-file", str(key), "--json"]).stdout
    )
    assert doc["signature"] == "valid"
    doc = json.loads(runner.invoke(app, ["model", "verify", str(SMALL), "--json"]).stdout)
    assert doc["signed"] is False and doc["signature"] == "none"


def test_cli_campaign_json_and_errors(tmp_path: Path) -> None:
    model = tmp_path / "m.gnm"
    shutil.copy(SMALL, model)
    res = runner.invoke(
        app,
        [
            "seu",
            "campaign",
            "--model",
            str(model),
            "--flips",
            "10",
            "--mode",
            "burst",
            "--eval-tiles",
            "32",
            "--json",
        ],
    )
    assert res.exit_code == 0
    doc = json.loads(res.stdout)
    assert doc["detected_pct"] == 100.0 and doc["mode"] == "burst"
    res = runner.invoke(app, ["seu", "campaign", "--model", str(model), "--mode", "triple"])
    assert res.exit_code == 2 and "unknown mode" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["seu", "campaign", "--model", str(tmp_path / "none.gnm")])
    assert res.exit_code == 2 and "cannot read" in res.output
    res = runner.invoke(app, ["model", "verify", str(tmp_path / "none.gnm")])
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_campaign_human_output_gives_the_verdict_first() -> None:
    from rich.console import Console

    rep = {
        "model": "cloudnet-s",
        "mode": "single",
        "flips_injected": 50,
        "bits_flipped": 50,
        "arena_bytes": 16144,
        "detected_pct": 100.0,
        "repaired_pct": 98.0,
        "outputs_identical_after_repair": False,
        "events_changing_output_before_repair": 16,
        "eval_tiles": 512,
        "golden_accuracy": 0.96875,
        "fp32_accuracy": 0.9668,
        "ber": [
            {
                "ber": 1e-3,
                "bits_flipped_mean": 128.7,
                "accuracy_unprotected": 0.9043,
                "accuracy_protected": 0.96875,
                "accuracy_fp32_unprotected": 0.6582,
            }
        ],
    }
    first, second = (line.plain for line in campaign_lines(rep))
    assert first.startswith("FAIL cloudnet-s: 50 single upsets")
    assert "100 % detected, 98 % repaired" in first and "NOT identical" in first
    assert second.startswith("16 of the 50 upsets changed an output")
    con = Console(width=80, record=True, color_system=None)
    con.print(campaign_table(rep))
    text = con.export_text()
    assert "0.9688" in text and "0.9668" in text and "0.6582" in text  # golden row first
    assert max(len(line) for line in text.splitlines()) <= 80
