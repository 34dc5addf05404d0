"""The XTCE export and the Yamcs configuration (fast; the slow flight is test_yamcs_e2e)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from ground.dictionary import Dictionary
from ground.yamcs.config import YamcsConfigError, YamcsPlan, write_config
from ground.yamcs.xtce import NAMESPACE, to_xtce

NS = {"x": NAMESPACE}
CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="module")
def dictionary() -> Dictionary:
    out = subprocess.run(
        [sys.executable, "-m", "gnomon.cli", "dict", "export", "--indent", "0"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Dictionary(json.loads(out.stdout))


def _xsd() -> Path:
    try:
        import space_packet_parser
        import xmlschema  # noqa: F401
    except ImportError:
        if CI:
            raise
        pytest.skip("xmlschema/space-packet-parser not installed (pip install -e '.[dev]')")
    return Path(space_packet_parser.__file__).parent / "xtce" / "schemas" / "SpaceSystem.xsd"


def test_the_export_is_valid_xtce_1_2(dictionary: Dictionary, tmp_path: Path) -> None:
    import xmlschema

    xsd = _xsd()
    out = to_xtce(dictionary)
    path = tmp_path / "gnomon.xml"
    path.write_text(out.xml, encoding="utf-8")
    errors = list(xmlschema.XMLSchema(xsd).iter_errors(str(path)))
    assert errors == [], "\n".join(f"{e.path}: {e.reason}" for e in errors[:5])
    # a broken document is caught (the check can fail)
    bad = out.xml.replace('abstract="true"', 'abstract="maybe"', 1)
    assert list(xmlschema.XMLSchema(xsd).iter_errors(bad))


def test_gnomon_dict_export_writes_xtce_and_names_what_it_left_out(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gnomon.cli import app

    out = tmp_path / "gnomon.xml"
    res = CliRunner().invoke(app, ["dict", "export", "--format", "xtce", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert ET.parse(out).getroot().tag == f"{{{NAMESPACE}}}SpaceSystem"
    assert "left out: " in res.stderr and "SCHED_INSERT" in res.stderr


def test_every_command_report_and_limit_is_in_the_mdb(dictionary: Dictionary) -> None:
    out = to_xtce(dictionary)
    root = ET.fromstring(out.xml)
    commands = {
        el.get("name") for el in root.iter(f"{{{NAMESPACE}}}MetaCommand") if not el.get("abstract")
    }
    left_out = {"SCHED_INSERT", "SEQ_LOAD", "PARAM_SET"}
    for cmd in dictionary.commands.values():
        short = cmd.name.split(".", 1)[1] if "." in cmd.name else cmd.name
        if cmd.name in left_out:
            continue
        assert short in commands, cmd.name
    assert {f"SET_PARAM_{p.name.split('.', 1)[1]}" for p in dictionary.params.values()} <= commands
    assert [o for o in out.omitted if o.startswith("command")] == [
        "command SCHED_INSERT (nested TC packets; Yamcs time-tags a TC with the "
        "pus11ScheduleAt option)",
        "command SEQ_LOAD (nested TC packets; Yamcs time-tags a TC with the "
        "pus11ScheduleAt option)",
    ]
    containers = {el.get("name") for el in root.iter(f"{{{NAMESPACE}}}SequenceContainer")}
    assert {f"HK_{h.name}" for h in dictionary.housekeeping.values()} <= containers
    assert {e.name.split(".", 1)[1] for e in dictionary.events.values()} <= containers
    limited = [c for c in dictionary.channels.values() if c.limits.any]
    assert out.alarms == len(limited) > 0
    # the three PUS-1 verifiers on the abstract TC
    verifiers = root.find(".//x:MetaCommand[@name='pus_tc']/x:VerifierSet", NS)
    assert verifiers is not None
    assert [v.get("name") for v in verifiers] == ["Accepted", "Started", "Completed"]


def test_limits_arrays_and_times_have_their_xtce_form(dictionary: Dictionary) -> None:
    root = ET.fromstring(to_xtce(dictionary).xml)
    soc = root.find(".//x:SpaceSystem[@name='eps']//x:FloatParameterType[@name='soc_pct_t']", NS)
    assert soc is not None
    ranges = soc.find("x:DefaultAlarm/x:StaticAlarmRanges", NS)
    assert ranges is not None
    eps = dictionary.channel("eps.soc_pct").limits
    warn, crit = ranges.find("x:WarningRange", NS), ranges.find("x:CriticalRange", NS)
    assert warn is not None and crit is not None
    assert float(warn.get("minInclusive", "nan")) == eps.yellow_low
    assert float(crit.get("minInclusive", "nan")) == eps.red_low
    # EVT_ENABLE: the count argument, then an array sized by it
    cmd = root.find(".//x:MetaCommand[@name='EVT_ENABLE']", NS)
    assert cmd is not None
    args = [a.get("name") for a in cmd.iterfind("x:ArgumentList/x:Argument", NS)]
    assert args == ["event_ids_count", "event_ids"]
    ref = root.find(".//x:ArrayArgumentType//x:ArgumentInstanceRef", NS)
    assert ref is not None and ref.get("argumentRef", "").endswith("_count")
    # CUC 4+2 (2^-16 s), TAI epoch
    cuc = root.find(".//x:AbsoluteTimeParameterType", NS)
    assert cuc is not None
    assert cuc.find("x:Encoding/x:IntegerDataEncoding", NS).get("sizeInBits") == "48"  # type: ignore[union-attr]
    assert cuc.findtext("x:ReferenceTime/x:Epoch", namespaces=NS) == "TAI"


def test_the_yamcs_config_follows_the_link_configuration(
    dictionary: Dictionary, tmp_path: Path
) -> None:
    cfg = LinkConfig.load(TEST_KEY_FILE)
    plan = YamcsPlan.make(cfg, http_port=18090, tm_port=11017, tc_port=11025)
    written = write_config(tmp_path / "y", cfg, dictionary, plan)
    inst = (written.etc / "yamcs.gnomon.yaml").read_text(encoding="utf-8")
    for line in (
        "frameLength: 1115",
        "spacecraftId: 42",
        "port: 11017",
        "port: 11025",
        "slidingWindowWidth: 8",
        "encryptionSpi: 3",
        "mapId: 0",
        "randomizeCltu: true",
    ):
        assert line in inst, line
    assert "authMask" not in inst  # SPI 3 uses the standard mask, Yamcs' default
    assert inst.count("vcId:") == 4  # TM VCs 0, 1, idle 7; TC VC 0
    key = tmp_path / "y" / "keys" / "sdls-spi3.key"
    assert key.read_bytes() == cfg.key(cfg.sa_config(3).key_id)
    assert key.stat().st_mode & 0o077 == 0
    assert "address: 127.0.0.1" in (written.etc / "yamcs.yaml").read_text(encoding="utf-8")


def test_an_sa_yamcs_cannot_fly_is_refused_with_the_reason() -> None:
    cfg = LinkConfig.load(TEST_KEY_FILE)
    with pytest.raises(YamcsConfigError, match="AES-256-GCM only"):
        YamcsPlan.make(cfg, spi=1)
    full = YamcsPlan.make(
        LinkConfig.from_dict(
            {
                "link": {"spacecraft_id": 42},
                "sdls": {
                    "active_spi": 3,
                    "keys": [{"id": 4, "hex": "00" * 32}],
                    "sa": [{"spi": 3, "key_id": 4, "algorithm": "aes-gcm", "auth_mask": "full"}],
                },
            }
        )
    )
    assert full.auth_mask_hex == "FF" * 20


def test_gnomon_yamcs_config_writes_a_config_the_sitl_link_matches(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gnomon.cli import app

    out = tmp_path / "y"
    res = CliRunner().invoke(
        app, ["yamcs", "config", "--out", str(out), "--tm-port", "12017", "--json"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["spi"] == 3
    assert summary["sitl_link"] == "udp://127.0.0.1:10025?tm=127.0.0.1:12017&mode=frame"
    assert (out / "etc" / "processor.yaml").exists()
    assert "port: 12017" in (out / "etc" / "yamcs.gnomon.yaml").read_text(encoding="utf-8")
    res = CliRunner().invoke(app, ["yamcs", "config", "--out", str(out), "--spi", "1"])
    assert res.exit_code != 0
    assert "AES-256-GCM only" in res.stderr


def test_gnomon_sitl_key_file_names_a_bad_file(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gnomon.cli import app

    bad = tmp_path / "link.toml"
    bad.write_text("[link]\nspacecraft_id = 4096\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["sitl", "--key-file", str(bad), "--orbits", "0.01"])
    assert res.exit_code != 0
    assert str(bad) in res.stderr and "spacecraft_id" in res.stderr
