"""`gnomon ground ...` for scripts: send with --json and exit codes, archive queries."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ground_harness import FlightThread, SimLink, flight_dictionary, free_udp_port
from typer.testing import CliRunner

from fsw.ccsds import TEST_KEY_FILE
from ground import Archive
from ground.cli import ground_app

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    dict_file = root / "dictionary.json"
    dict_file.write_text(json.dumps(flight_dictionary()), encoding="utf-8")
    archive_file = root / "flight.sqlite"
    archive = Archive(archive_file)
    link = SimLink(archive=archive)
    link.send("PING")
    link.send("SEQ_START", seq_id=77)
    link.run(30.0)
    archive.close()
    return {"dict": dict_file, "archive": archive_file, "root": root}


@pytest.fixture(scope="module")
def udp_flight() -> Iterator[str]:
    url = f"udp://127.0.0.1:{free_udp_port()}"
    with FlightThread(url):
        yield url


def _send(files: dict[str, Path], url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(
        ground_app,
        [
            "send",
            *args,
            "--link",
            url,
            "--dict",
            str(files["dict"]),
            "--key-file",
            str(TEST_KEY_FILE),
            "--arsn-file",
            str(files["root"] / "arsn.json"),
            "--timeout",
            "5",
        ],
    )
    return result.exit_code, result.stdout, result.stderr


def test_send_prints_the_stages_as_json(files: dict[str, Path], udp_flight: str) -> None:
    code, out, _ = _send(files, udp_flight, "PING", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] and doc["status"] == "completed"
    assert [s["stage"] for s in doc["stages"]] == ["sent", "accepted", "started", "completed"]
    code, out, _ = _send(files, udp_flight, "PING")  # a person sees the stages and times
    assert code == 0 and re.search(r"sent \+0\.00 s -> accepted \+[\d.]+ s -> .*completed", out)


def test_send_exit_codes_tell_scripts_what_happened(
    files: dict[str, Path], udp_flight: str
) -> None:
    code, out, _ = _send(files, udp_flight, "SEQ_START", "seq_id=77", "--json")
    assert code == 1 and json.loads(out)["failure_code"] == "NOT_FOUND"
    code, _, err = _send(files, udp_flight, "SEQ_START", "seq_id=0")
    assert code == 2 and "seq_id 0 below min 1" in err
    code, _, err = _send(files, udp_flight, "PNG")
    assert code == 2 and "did you mean PING?" in err
    code, out, _ = _send(
        files,
        udp_flight,
        "PARAM_SET",
        '[{"param_id": "health.max_restarts", "value": 3}]',
        "--json",
    )
    assert code == 0 and json.loads(out)["args"]["params"][0]["value"] == 3
    code, out, _ = _send(files, udp_flight, "PING", "--at", "+2", "--json")
    assert code == 0
    doc = json.loads(out)
    accepted = next(s for s in doc["stages"] if s["stage"] == "accepted")
    assert doc["release_tai"] <= accepted["t_tai"] < doc["release_tai"] + 0.5


def test_send_without_a_spacecraft_times_out(files: dict[str, Path]) -> None:
    url = f"udp://127.0.0.1:{free_udp_port()}"
    result = runner.invoke(
        ground_app,
        [
            "send",
            "PING",
            "--link",
            url,
            "--dict",
            str(files["dict"]),
            "--no-keep-arsn",
            "--timeout",
            "1",
        ],
    )
    assert result.exit_code == 1
    assert "TIMED OUT" in result.stdout and "did not reach completed" in result.stderr
    assert "nothing at all was received on udp://" in result.stderr  # the likely cause
    assert "WARNING ground.tracker" not in result.stderr  # said once, not twice


def test_tlm_events_and_commands_from_the_archive(files: dict[str, Path]) -> None:
    arch = str(files["archive"])
    result = runner.invoke(ground_app, ["tlm", "exec.met_s", "--archive", arch, "--json"])
    assert result.exit_code == 0
    values = [s["value"] for s in json.loads(result.stdout)]
    assert values == list(range(1, 31))
    result = runner.invoke(
        ground_app, ["tlm", "exec.met_s", "--archive", arch, "--since", "-4s", "--json"]
    )
    assert [s["value"] for s in json.loads(result.stdout)] == [26, 27, 28, 29, 30]  # inclusive
    result = runner.invoke(ground_app, ["tlm", "mode.*", "--archive", arch, "--limit", "1"])
    assert result.exit_code == 0 and "mode.mode" in result.stdout
    result = runner.invoke(ground_app, ["tlm", "exec.mets", "--archive", arch])
    assert result.exit_code == 2 and "did you mean exec.met_s" in result.stderr
    result = runner.invoke(
        ground_app, ["events", "--archive", arch, "--json", "--severity", "MEDIUM"]
    )
    events = json.loads(result.stdout)
    assert [e["name"] for e in events] == ["cmd.TC_FAILED"]
    result = runner.invoke(ground_app, ["commands", "--archive", arch, "--json"])
    statuses = {c["name"]: c["status"] for c in json.loads(result.stdout)}
    assert statuses == {"PING": "completed", "SEQ_START": "failed"}
    result = runner.invoke(ground_app, ["commands", "--archive", arch])  # a person reads it
    ping = next(line for line in result.stdout.splitlines() if "PING" in line)
    assert re.search(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z +PING +completed +sent -> "
        r"accepted -> started -> completed \(\d+\.\d s\)",
        ping,
    ), ping
    result = runner.invoke(
        ground_app, ["tlm", "exec.met_s", "--archive", str(files["root"] / "nope.sqlite")]
    )
    assert result.exit_code == 2 and "no archive at" in result.stderr


def test_export_and_replay(files: dict[str, Path], tmp_path: Path) -> None:
    arch = str(files["archive"])
    out = tmp_path / "core.csv"
    result = runner.invoke(
        ground_app, ["export", "--archive", arch, "--out", str(out), "--pattern", "exec.*"]
    )
    assert result.exit_code == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["name"] for r in rows} >= {"exec.met_s", "exec.cycles"}
    result = runner.invoke(
        ground_app,
        ["replay", "--archive", arch, "--into", str(tmp_path / "again.sqlite"), "--json"],
    )
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["decode_errors"] == 0 and summary["by_kind"]["hk"] >= 30
    with Archive(tmp_path / "again.sqlite") as again, Archive(arch) as original:
        assert again.counts()["samples"] == original.counts()["samples"]


def test_time_options_are_checked(files: dict[str, Path]) -> None:
    result = runner.invoke(
        ground_app, ["events", "--archive", str(files["archive"]), "--since", "yesterday"]
    )
    assert result.exit_code == 2 and "is not a time" in result.stderr
    result = runner.invoke(
        ground_app,
        ["events", "--archive", str(files["archive"]), "--since", "2000-01-01T00:00:00Z", "--json"],
    )
    assert result.exit_code == 0 and len(json.loads(result.stdout)) >= 1


@pytest.fixture()
def float_archive(tmp_path: Path) -> Path:
    """An archive of the minimal dictionary: an f32 channel with units and a u32 without."""
    from ground import Dictionary
    from ground.dictionary import minimal_dictionary

    path = tmp_path / "floats.sqlite"
    with Archive(path) as arch:
        arch.set_dictionary(Dictionary(minimal_dictionary()))
        ids = (4097, 4099)  # demo.temp_c (f32, C), demo.count (u32)
        arch.add_samples(2.0e9, ids, (90.06070709228516, 7))
        arch.add_samples(2.0e9 + 10, ids, (21.5, 8))
    return path


def test_tlm_prints_six_significant_digits_and_units(float_archive: Path) -> None:
    arch = str(float_archive)
    result = runner.invoke(ground_app, ["tlm", "demo.temp_c", "--archive", arch])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "2021-05-18T03:32:43.000Z  demo.temp_c  90.0607 C"
    assert lines[1].endswith("21.5 C") and "90.06070709228516" not in result.stdout
    result = runner.invoke(ground_app, ["tlm", "demo.*", "--archive", arch])
    assert "demo.count" in result.stdout and all(len(ln) < 80 for ln in result.stdout.split("\n"))
    assert runner.invoke(ground_app, ["tlm", "demo", "--archive", arch]).stdout == result.stdout
    result = runner.invoke(ground_app, ["tlm", "demo.temp_c", "--archive", arch, "--json"])
    first = json.loads(result.stdout)[0]
    assert first["value"] == 90.06070709228516 and first["units"] == "C"  # JSON: full value


def test_an_empty_time_range_says_what_the_archive_holds(float_archive: Path) -> None:
    result = runner.invoke(
        ground_app,
        ["tlm", "demo.temp_c", "--archive", str(float_archive), "--since", str(2.0e9 + 60)],
    )
    assert result.exit_code == 0 and result.stdout == ""
    assert (
        "no samples of demo.temp_c from 2021-05-18T03:33:43.000Z to the end; its samples "
        "span 2021-05-18T03:32:43.000Z to 2021-05-18T03:32:53.000Z" in result.stderr
    )
    result = runner.invoke(
        ground_app, ["events", "--archive", str(float_archive), "--severity", "high"]
    )
    assert result.exit_code == 0 and "no HIGH events" in result.stderr


def test_help_shows_an_example() -> None:
    result = runner.invoke(ground_app, ["tlm", "--help"])
    assert "gnomon ground tlm eps.soc_pct --archive out/sitl/archive.sqlite" in result.stdout


def test_a_bad_at_time_is_refused_before_anything_is_sent(files: dict[str, Path]) -> None:
    result = runner.invoke(
        ground_app, ["send", "PING", "--at", "soon", "--dict", str(files["dict"]), "--no-keep-arsn"]
    )
    assert result.exit_code == 2
    assert "--at 'soon' is not a time: give +SECONDS from now or TAI seconds" in result.stderr


def test_a_bogus_severity_is_refused(files: dict[str, Path]) -> None:
    result = runner.invoke(
        ground_app, ["events", "--archive", str(files["archive"]), "--severity", "BOGUS"]
    )
    assert result.exit_code == 2
    assert "--severity 'BOGUS' is not one of INFO, LOW, MEDIUM, HIGH" in result.stderr


def test_replaying_an_archive_into_itself_is_refused(
    files: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    arch = tmp_path / "a.sqlite"
    shutil.copy(files["archive"], arch)
    before = arch.read_bytes()
    for into in (arch, tmp_path / "." / "a.sqlite"):
        result = runner.invoke(ground_app, ["replay", "--archive", str(arch), "--into", str(into)])
        assert result.exit_code == 2
        assert "is the archive being replayed" in result.stderr
    link = tmp_path / "link.sqlite"
    link.symlink_to(arch)
    result = runner.invoke(ground_app, ["replay", "--archive", str(arch), "--into", str(link)])
    assert result.exit_code == 2
    assert arch.read_bytes() == before


def _damage_the_stored_dictionary(path: Path) -> None:
    """Break the chain of overflow pages holding the dictionary JSON in ``meta``."""
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(page, len(data), page):
        body = data[start : start + page]
        if body[0] not in (2, 5, 10, 13) and b'"description"' in body:  # an overflow page
            data[start : start + 4] = b"\xff\xff\xff\xff"  # its next-page number
            path.write_bytes(bytes(data))
            return
    raise AssertionError("no overflow page of the dictionary found")


def test_a_damaged_archive_gives_an_error_not_a_traceback(
    files: dict[str, Path], tmp_path: Path
) -> None:
    import shutil

    arch = tmp_path / "damaged.sqlite"
    shutil.copy(files["archive"], arch)
    _damage_the_stored_dictionary(arch)
    result = runner.invoke(ground_app, ["replay", "--archive", str(arch), "--json"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "error: cannot read archive" in result.stderr
    assert "malformed" in result.stderr and "Traceback" not in result.output


def test_flagged_values_are_listed_apart(tmp_path: Path) -> None:
    from ground import Dictionary
    from ground.dictionary import minimal_dictionary

    path = tmp_path / "flags.sqlite"
    with Archive(path) as arch:
        arch.set_dictionary(Dictionary(minimal_dictionary()))
        arch.add_samples(2.0e9, (4097, 4099), (21.5, 7))
        arch.add_samples(2.0e9 + 10, (4099,), (8,))
        arch.add_flagged(2.0e9 + 10, 4097, float("nan"), "not a number (NaN)")
    result = runner.invoke(ground_app, ["tlm", "demo.temp_c", "--archive", str(path)])
    assert result.exit_code == 0 and "21.5 C" in result.stdout
    assert "1 value(s) of demo.temp_c in this range were flagged" in result.stderr
    result = runner.invoke(ground_app, ["tlm", "demo", "--archive", str(path), "--flagged"])
    assert result.exit_code == 0
    assert result.stdout.strip() == (
        "2021-05-18T03:32:53.000Z  demo.temp_c  nan  FLAGGED: not a number (NaN)"
    )
    result = runner.invoke(
        ground_app, ["tlm", "demo.*", "--archive", str(path), "--flagged", "--json"]
    )
    assert [(r["name"], r["value"], r["reason"]) for r in json.loads(result.stdout)] == [
        ("demo.temp_c", "nan", "not a number (NaN)")
    ]
