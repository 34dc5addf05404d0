"""The archive: what a flight session writes can be queried, exported and replayed."""

from __future__ import annotations

import csv
import shutil
import sqlite3
from pathlib import Path

import pytest
from test_ground_harness import SimLink

from ground import Archive, ArchiveError, Dictionary, EventRecord, minimal_dictionary
from ground.archive import ground_time_text, utc_text
from ground.session import replay_archive


@pytest.fixture(scope="module")
def flown(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of 20 simulated seconds: ping, a failure, a parameter change."""
    path = tmp_path_factory.mktemp("archive") / "flight.sqlite"
    archive = Archive(path)
    link = SimLink(archive=archive)
    link.send("PING")
    link.send("SEQ_START", seq_id=77)
    link.send("PARAM_SET", params=[{"param_id": "health.max_restarts", "value": 6}])
    link.run(20.0)
    archive.close()
    return path


def test_file_layout_is_the_documented_one(flown: Path) -> None:
    db = sqlite3.connect(flown)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {
        "meta",
        "channels",
        "samples",
        "packets",
        "events",
        "commands",
        "command_stages",
        "flagged",
    }
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {
        r[0]
        for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite_%'"
        )
    }
    assert {"packets_t_tai", "events_t_tai", "events_name", "commands_name"} <= indexes
    # plain SQL works for operators: the telemetry view joins names in
    rows = db.execute(
        "SELECT value FROM telemetry WHERE name='exec.met_s' ORDER BY t_tai"
    ).fetchall()
    assert [r[0] for r in rows][:3] == [1, 2, 3]  # mission seconds, one report a second


def test_samples_by_name_and_time_range(flown: Path) -> None:
    with Archive(flown) as arch:
        met = arch.telemetry("exec.met_s")
        assert len(met) >= 19
        assert [s.value for s in met] == list(range(1, len(met) + 1))
        middle = arch.telemetry("exec.met_s", since_tai=met[5].t_tai, until_tai=met[8].t_tai)
        assert [s.value for s in middle] == [6, 7, 8, 9]
        newest = arch.telemetry("exec.met_s", limit=2, newest_first=True)
        assert [s.value for s in newest] == [met[-1].value, met[-2].value]
        mode = arch.telemetry("mode.mode")
        assert {s.value for s in mode} == {"NOMINAL"}  # enums archived as labels
        assert "mode.mode" in arch.channel_names("mode.*")
        with pytest.raises(ArchiveError, match=r"did you mean exec\.met_s"):
            arch.telemetry("exec.mets")


def test_events_commands_and_stages(flown: Path) -> None:
    with Archive(flown) as arch:
        failed = arch.events(name="cmd.*")
        assert [e.name for e in failed] == ["cmd.TC_FAILED"]
        assert failed[0].args["failure_code"] == "NOT_FOUND"
        assert arch.events(severity="medium") == failed
        assert len(arch.events(limit=1)) == 1
        cmds = {c.name: c for c in arch.commands()}
        assert cmds["PING"].status == "completed"
        assert [s.stage.value for s in cmds["PING"].stages] == [
            "sent",
            "accepted",
            "started",
            "completed",
        ]
        seq = cmds["SEQ_START"]
        assert (seq.status, seq.failure_code, seq.reason) == (
            "failed",
            "NOT_FOUND",
            "no sequence with id 77",
        )
        assert cmds["PARAM_SET"].args == {"params": [{"param_id": 0x0902, "value": 6}]}
        assert arch.commands(name="PING")[0].to_dict()["status"] == "completed"


def test_sent_times_read_with_the_archives_ground_clock(flown: Path, tmp_path: Path) -> None:
    with Archive(flown) as arch:  # written by a station-like session: Unix seconds
        assert arch.ground_clock == "unix"
        ping = arch.commands(name="PING")[0]
    assert ping.sent_utc == ground_time_text(ping.t_sent_s, "unix") != ""
    assert ping.to_dict()["sent_utc"] == ping.sent_utc
    # The same rows under SITL's clock (simulated TAI): stored once, kept on reopening.
    copy = tmp_path / "sitl.sqlite"
    shutil.copy(flown, copy)
    Archive(copy, ground_clock="tai").close()
    with Archive(copy) as arch:
        assert arch.ground_clock == "tai"
        again = arch.commands(name="PING")[0]
    assert again.sent_utc == utc_text(ping.t_sent_s) != ping.sent_utc
    with pytest.raises(ArchiveError, match="ground clock 'gps' is not one of unix, tai"):
        Archive(copy, ground_clock="gps")


def test_dictionary_travels_with_the_archive(flown: Path) -> None:
    with Archive(flown) as arch:
        d = arch.dictionary()
        assert d is not None and "PING" in d.commands


def test_export_csv(flown: Path, tmp_path: Path) -> None:
    with Archive(flown) as arch:
        n = arch.export_csv(tmp_path / "met.csv", pattern="exec.met_s")
        m = arch.export_events_csv(tmp_path / "events.csv")
    rows = list(csv.DictReader((tmp_path / "met.csv").open(encoding="utf-8")))
    assert len(rows) == n and n >= 19
    assert rows[0]["name"] == "exec.met_s" and rows[0]["value"] == "1"
    assert rows[0]["utc"].endswith("Z") and float(rows[1]["t_tai"]) > float(rows[0]["t_tai"])
    events = list(csv.DictReader((tmp_path / "events.csv").open(encoding="utf-8")))
    assert len(events) == m and any(e["name"] == "cmd.TC_FAILED" for e in events)


def test_replay_decodes_the_same_data_again(flown: Path, tmp_path: Path) -> None:
    with Archive(flown) as arch, Archive(tmp_path / "again.sqlite") as again:
        decoded = list(replay_archive(arch, into=again))
        assert len(decoded) == arch.counts()["packets"]
        assert not any(d.error for d in decoded)
        assert again.counts()["samples"] == arch.counts()["samples"]
        assert again.telemetry("exec.met_s") == arch.telemetry("exec.met_s")


def test_writes_are_batched_until_size_or_age() -> None:
    d = Dictionary(minimal_dictionary())
    arch = Archive(":memory:", batch_rows=10, flush_interval_s=5.0)
    arch.set_dictionary(d)
    arch.add_samples(1.0, (0x1001, 0x1003), (1.0, 1))
    assert not arch.maybe_flush(0.0) and arch.pending_rows == 2
    assert not arch.maybe_flush(4.0)
    assert arch.maybe_flush(5.5) and arch.pending_rows == 0
    for i in range(5):
        arch.add_samples(2.0 + i, (0x1001, 0x1003), (2.0, 2))
    assert arch.maybe_flush(5.6)  # 10 rows waiting: written at once
    assert arch.stats["samples"] == 12 and arch.stats["flushes"] == 2
    arch.add_event(
        9.0, EventRecord(3.0, 0x1001, "demo.HOT", "HIGH", {"temp_c": 51.0}, "too hot: 51.0 C")
    )
    assert [e.message for e in arch.events()] == ["too hot: 51.0 C"]  # queries flush first
    arch.close()
    with pytest.raises(ArchiveError, match="is closed"):
        arch.flush()


def test_same_channel_and_time_is_stored_once() -> None:
    arch = Archive(":memory:")
    arch.set_dictionary(Dictionary(minimal_dictionary()))
    arch.add_samples(1.0, (0x1001,), (20.0,))
    arch.add_samples(1.0, (0x1001,), (20.0,))
    assert len(arch.telemetry("demo.temp_c")) == 1


def test_unusable_archive_files_are_explained(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ArchiveError, match="cannot open archive"):
        Archive(junk)
    with pytest.raises(ArchiveError, match="cannot write"):
        Archive(":memory:").export_csv(tmp_path / "no" / "such" / "dir.csv")


def test_utc_text() -> None:
    assert utc_text(37.0) == "1958-01-01T00:00:00.000Z"
    assert utc_text(None) == ""


def test_docs_list_every_table_and_column(flown: Path) -> None:
    """docs/ground.md's schema table names each table's columns in order."""
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "ground.md").read_text(encoding="utf-8")
    documented = {
        m.group(1): re.findall(r"`(\w+)`", m.group(2))
        for m in re.finditer(r"^\| `(\w+)` \| ([^|]+) \|", doc, re.MULTILINE)
    }
    db = sqlite3.connect(flown)
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        assert documented.get(table) == columns, f"docs/ground.md: table {table}"


# -- values that are not data, read-only queries ------------------------------------------


def _demo_hk(t_tai: float, temp_c: float, state_raw: int, count: int) -> bytes:
    """A (3,25) report of the minimal dictionary's sid 1 (demo.temp_c, .state, .count)."""
    import struct

    from fsw.ccsds import PusTm, cuc_encode

    data = struct.pack(">HfBI", 1, temp_c, state_raw, count)
    return PusTm(apid=102, service=3, subservice=25, app_data=data, time=cuc_encode(t_tai)).encode()


def test_nan_huge_and_unlabelled_values_are_flagged_and_kept_apart() -> None:
    """Telemetry with a valid CRC is not data by that alone: NaN, a value outside the
    channel's declared valid range and an enum value without a label are counted, kept
    out of the samples and archived apart with the reason."""
    from ground import GroundSession
    from ground.dictionary import LimitState, minimal_dictionary

    doc = minimal_dictionary()
    temp = next(t for t in doc["telemetry"] if t["name"] == "demo.temp_c")
    temp.update(min=-40.0, max=125.0)  # a valid range, as the flight declares one
    arch = Archive(":memory:")
    session = GroundSession(doc, None, archive=arch)
    session.receive_packets([_demo_hk(100.0, 21.5, 1, 7)], 1.0)  # good data
    session.receive_packets([_demo_hk(101.0, float("nan"), 1, 8)], 2.0)
    session.receive_packets([_demo_hk(102.0, 3.0e38, 9, 9)], 3.0)  # huge, no such label
    session.receive_packets([_demo_hk(103.0, float("inf"), 0, 10)], 4.0)
    assert session.stats["values_flagged"] == 4
    assert [s.value for s in arch.telemetry("demo.temp_c")] == [21.5]
    assert [s.value for s in arch.telemetry("demo.count")] == [7, 8, 9, 10]  # the rest stays
    assert [s.value for s in arch.telemetry("demo.state")] == ["BUSY", "BUSY", "IDLE"]
    flagged = [(f.name, f.t_tai, f.reason) for f in arch.flagged()]
    assert [f[:2] for f in flagged] == [  # on-board times
        ("demo.temp_c", 101.0),
        ("demo.temp_c", 102.0),
        ("demo.state", 102.0),
        ("demo.temp_c", 103.0),
    ]
    assert [f[2] for f in flagged] == [
        "not a number (NaN)",
        "outside the valid range -40..125 C",
        "raw value 9 has no label in the enum",
        "infinite",
    ]
    assert [f.value for f in arch.flagged("demo.state")] == ["9"]
    assert arch.counts()["flagged"] == 4
    latest = session.telemetry.get("demo.temp_c")
    assert latest is not None and latest.limit is LimitState.INVALID  # the console's magenta
    arch.close()


def test_finite_floats_whose_sum_overflows_are_not_flagged() -> None:
    """Floats without a declared range are checked all at once by their sum; a sum that
    overflows only means a closer look, not a flag."""
    from ground.dictionary import HkLayout

    doc = minimal_dictionary()
    doc["telemetry"].append({**doc["telemetry"][0], "name": "demo.temp2_c", "id": 4100})
    doc["housekeeping"][0]["channels"].append(4100)
    d = Dictionary(doc)
    layout = HkLayout.compile(d, 1, d.housekeeping[1].channel_ids)
    assert layout.problems((3.0e38, "BUSY", 7, 3.0e38)) == []  # sum: inf, each finite
    assert layout.problems((3.0e38, "BUSY", 7, float("-inf"))) == [(3, "infinite")]


@pytest.mark.req("EPS-006")
def test_the_flight_declares_valid_ranges_the_ground_checks() -> None:
    from fsw.app import build_flight
    from fsw.core.clock import SimClock
    from fsw.core.dictionary import build_dictionary
    from ground.dictionary import Dictionary

    d = Dictionary(build_dictionary(build_flight(SimClock(0.0))))
    soc = d.channels["eps.soc_pct"]
    assert (soc.field.min, soc.field.max) == (0.0, 100.0)
    assert soc.problem(55.0) is None and soc.problem(3.4e38) == "outside the valid range 0..100 %"


def test_queries_on_an_empty_or_foreign_file_write_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    with pytest.raises(ArchiveError, match=r"empty\.sqlite is empty: not a Gnomon archive"):
        Archive(empty, readonly=True)
    assert empty.read_bytes() == b""
    foreign = tmp_path / "foreign.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE birds(name TEXT)")
    db.commit()
    db.close()
    before = foreign.read_bytes()
    with pytest.raises(ArchiveError, match="SQLite file but not a Gnomon archive"):
        Archive(foreign, readonly=True)
    assert foreign.read_bytes() == before
    tables = sqlite3.connect(foreign).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("birds",)]
    with pytest.raises(ArchiveError, match="no archive at"):
        Archive(tmp_path / "missing.sqlite", readonly=True)
    assert not (tmp_path / "missing.sqlite").exists()


def test_a_read_only_query_changes_no_byte_and_leaves_no_files(flown: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.sqlite"
    shutil.copy(flown, copy)
    before = copy.read_bytes()
    with Archive(copy, readonly=True) as arch:
        assert arch.counts()["packets"] > 0 and arch.events()
        with pytest.raises(ArchiveError, match="is open read-only"):
            arch.set_dictionary(Dictionary(minimal_dictionary()))
    assert copy.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.sqlite"]


def test_a_read_only_reader_sees_what_a_live_writer_flushed(tmp_path: Path) -> None:
    path = tmp_path / "live.sqlite"
    writer = Archive(path)
    writer.set_dictionary(Dictionary(minimal_dictionary()))
    writer.add_samples(100.0, (4097, 4099), (21.5, 7))
    writer.flush()
    with Archive(path, readonly=True) as reader:
        assert [s.value for s in reader.telemetry("demo.temp_c")] == [21.5]
    writer.add_samples(101.0, (4097, 4099), (22.0, 8))
    writer.flush()
    with Archive(path, readonly=True) as reader:
        assert [s.value for s in reader.telemetry("demo.count")] == [7, 8]
    writer.close()


def test_the_archive_cache_is_bounded(tmp_path: Path) -> None:
    """SQLite's page cache does not grow with the file (memory of a long run stays flat)."""
    from ground.archive import CACHE_KIB

    with Archive(tmp_path / "a.sqlite") as arch:
        assert arch._db.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
    assert CACHE_KIB <= 16 * 1024
