"""Pinned ids: the lock file, `gnomon dict lock`, and stored TCs under another dictionary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fsw.app import build_flight
from fsw.ccsds import PusTc
from fsw.cli import dict_app
from fsw.core import Channel, Component, FlightSoftware, MemNvStore, SimClock, idlock
from fsw.core.clock import DEFAULT_START_TAI
from fsw.core.dictionary import build_dictionary
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of, verification

T0 = DEFAULT_START_TAI


def _current() -> dict[str, dict[str, Any]]:
    return idlock.id_table(build_dictionary(build_flight()))


@pytest.mark.req("EXEC-008")
def test_every_on_board_id_equals_the_committed_lock() -> None:
    locked = idlock.load_lock()
    diff = idlock.compare(locked, _current())
    assert diff.empty, (
        "on-board ids differ from fsw/dictionary.lock.json:\n  "
        + "\n  ".join(diff.lines())
        + "\nNew ids: run `gnomon dict lock`. A changed or removed id breaks stored "
        "commands and archives: bump DICTIONARY_VERSION (fsw/core/idlock.py) first."
    )
    assert locked["dictionary_version"] == idlock.DICTIONARY_VERSION


@pytest.mark.req("EXEC-008")
def test_a_changed_id_is_breaking_and_an_added_one_is_not() -> None:
    table = _current()
    moved = json.loads(json.dumps(table))
    moved["telemetry"]["eps.soc_pct"] += 1
    diff = idlock.compare(table, moved)
    assert diff.breaking and diff.changed == [
        f"telemetry eps.soc_pct: {table['telemetry']['eps.soc_pct']} -> "
        f"{table['telemetry']['eps.soc_pct'] + 1}"
    ]
    grown = json.loads(json.dumps(table))
    grown["events"]["eps.NEW_EVENT"] = 0x0C7F
    diff = idlock.compare(table, grown)
    assert not diff.breaking and diff.added == ["events eps.NEW_EVENT: 3199"]
    del grown["parameters"]["payload.enabled"]
    assert idlock.compare(table, grown).removed == ["parameters payload.enabled: 3841"]


@pytest.mark.req("EXEC-008")
def test_dict_lock_refuses_a_renumbering_without_a_version_bump(tmp_path: Path) -> None:
    lock = tmp_path / "lock.json"
    table = _current()
    table["commands"]["power.SET_TLE"][2] += 1  # as if the code had moved the opcode
    lock.write_text(idlock.lock_document(table), encoding="utf-8")
    before = lock.read_text(encoding="utf-8")
    res = CliRunner().invoke(dict_app, ["lock", "--lock", str(lock)])
    assert res.exit_code == 1
    assert "changed: commands power.SET_TLE" in res.stderr
    assert "bump DICTIONARY_VERSION in fsw/core/idlock.py to 2" in res.stderr
    assert lock.read_text(encoding="utf-8") == before  # nothing written
    assert CliRunner().invoke(dict_app, ["lock", "--check", "--lock", str(lock)]).exit_code == 1


@pytest.mark.req("EXEC-008")
def test_dict_lock_records_new_ids(tmp_path: Path) -> None:
    lock = tmp_path / "lock.json"
    table = _current()
    del table["events"]["eps.SOC_LOW"]  # the code has an id the lock does not know yet
    lock.write_text(idlock.lock_document(table), encoding="utf-8")
    res = CliRunner().invoke(dict_app, ["lock", "--lock", str(lock)])
    assert res.exit_code == 0, res.stderr
    assert "added: events eps.SOC_LOW" in res.stderr
    assert idlock.compare(idlock.load_lock(lock), _current()).empty
    res = CliRunner().invoke(dict_app, ["lock", "--check", "--lock", str(lock)])
    assert res.exit_code == 0 and "up to date" in res.stderr


# ------------------------------------------------ stored TCs under another dictionary
class Extra(Component):
    """A component a software update adds: the dictionary (and its hash) changes."""

    NAME = "extra"
    TELEMETRY = (Channel("level", "u8", id=4),)


def _boot(store: MemNvStore, *, updated: bool, t: float = T0) -> FlightSoftware:
    fs = build_flight(clock=SimClock(t), store=store, components={16: Extra()} if updated else None)
    fs.step(0.0)
    fs.downlink_packets()
    return fs


def _ping(seq: int) -> bytes:
    return PusTc(apid=100, service=17, subservice=1, seq_count=seq).encode()


@pytest.mark.req("SCHED-007")
@pytest.mark.parametrize("updated", [False, True])
def test_a_time_tagged_tc_from_another_dictionary_is_refused(updated: bool) -> None:
    store = MemNvStore()
    fs = _boot(store, updated=False)
    tc = CommandEncoder(fs).encode(
        "SCHED_INSERT", activities=[{"release_time": T0 + 30.0, "tc": _ping(42)}]
    )
    fs.uplink_packet(tc)
    fs.step(0.0)
    old_hash = fs.telemetry("exec.dict_hash")
    # reboot: the same software, or an update whose dictionary differs
    fs2 = _boot(store, updated=updated, t=T0 + 10.0)
    assert (fs2.telemetry("exec.dict_hash") != old_hash) is updated
    fs2.step(25.0)
    recs = decode_downlink(fs2)
    reports = verification(recs, request_id_of(_ping(42)))
    if not updated:
        assert reports[-1] == (7, None)
        return
    assert reports == [(2, "DICTIONARY_MISMATCH")]
    assert not [r for r in recs if r.service == 17 and r.subservice == 2]  # no pong
    fail = next(r for r in recs if r.service == 1 and r.subservice == 2)
    assert f"stored under dictionary {old_hash:08x}" in str(fail.fields)


@pytest.mark.req("SEQ-008")
def test_an_uploaded_sequence_from_another_dictionary_is_refused() -> None:
    store = MemNvStore()
    fs = _boot(store, updated=False)
    enc = CommandEncoder(fs)
    fs.uplink_packet(
        enc.encode("SEQ_LOAD", seq_id=9, name="pings", steps=[{"delay_ms": 0, "tc": _ping(7)}])
    )
    fs.step(0.0)
    fs2 = _boot(store, updated=True, t=T0 + 5.0)
    fs2.uplink_packet(CommandEncoder(fs2).encode("SEQ_START", seq_id=9))
    fs2.step(1.0)
    assert verification(decode_downlink(fs2), request_id_of(_ping(7))) == [
        (2, "DICTIONARY_MISMATCH")
    ]
