"""Atomic storage: record format, last good copy, power cuts, torn and corrupt files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsw.app import build_flight
from fsw.core.errors import NvStoreError
from fsw.core.nvstore import HEADER_LEN, DirNvStore, MemNvStore, NvStore, pack_record, unpack_record


class PowerCut(BaseException):
    """Simulated loss of power: nothing after it runs (not even except Exception)."""


@pytest.mark.req("PERS-001")
def test_record_known_answer_and_round_trip() -> None:
    rec = pack_record(b"hi")
    assert rec.hex() == "474e53540100000000000002442a18b46869"
    assert len(rec) == HEADER_LEN + 2
    assert unpack_record(rec) == b"hi"
    assert unpack_record(pack_record(b"")) == b""


@pytest.mark.req("PERS-005")
@pytest.mark.parametrize("kind", ["mem", "dir"])
def test_save_load_keeps_previous_copy(kind: str, tmp_path: Path) -> None:
    st_: NvStore = MemNvStore() if kind == "mem" else DirNvStore(tmp_path)
    assert st_.load("params").source == "none"
    assert st_.load("params").problems == ()  # first boot is not a problem
    st_.save("params", b"one")
    st_.save("params", b"two")
    res = st_.load("params")
    assert (res.source, res.payload, res.problems) == ("primary", b"two", ())
    if isinstance(st_, DirNvStore):
        assert unpack_record((tmp_path / "params.gst.bak").read_bytes()) == b"one"
        assert not (tmp_path / "params.gst.tmp").exists()


@pytest.mark.req("PERS-003")
def test_torn_primary_falls_back_to_last_good_copy(tmp_path: Path) -> None:
    st_ = DirNvStore(tmp_path)
    st_.save("sched", b"old")
    st_.save("sched", b"new-and-longer")
    p = tmp_path / "sched.gst"
    p.write_bytes(p.read_bytes()[:-4])  # torn write
    res = st_.load("sched")
    assert res.source == "backup" and res.payload == b"old"
    assert any("torn" in pr for pr in res.problems)


@pytest.mark.req("PERS-003")
def test_corrupt_primary_detected_by_crc() -> None:
    st_ = MemNvStore()
    st_.save("k", b"good")
    st_.save("k", b"better")
    raw = bytearray(st_.files["k.gst"])
    raw[-1] ^= 0x01
    st_.files["k.gst"] = bytes(raw)
    res = st_.load("k")
    assert (res.source, res.payload) == ("backup", b"good")
    assert any("CRC" in pr for pr in res.problems)


@pytest.mark.req("PERS-005")
def test_both_copies_bad_reports_and_returns_nothing() -> None:
    st_ = MemNvStore()
    st_.save("k", b"a")
    st_.save("k", b"b")
    st_.files["k.gst"] = b"garbage"
    st_.files["k.gst.bak"] = b"GNST" + b"\x00" * 20
    res = st_.load("k")
    assert res.payload is None and res.source == "none"
    assert len(res.problems) == 2


@pytest.mark.req("PERS-007")
def test_saving_over_a_corrupt_primary_keeps_the_good_backup() -> None:
    st_ = MemNvStore()
    st_.save("k", b"v1")
    st_.save("k", b"v2")  # backup = v1
    st_.files["k.gst"] = b"rot"  # primary rots
    st_.save("k", b"v3")  # must not rotate the rotten primary over the good backup
    assert unpack_record(st_.files["k.gst.bak"]) == b"v1"
    assert st_.load("k").payload == b"v3"


@pytest.mark.req("PERS-004")
def test_power_cut_between_write_and_rename_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st_ = DirNvStore(tmp_path)
    st_.save("params", b"committed")
    real_replace = os.replace

    def cut(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        if str(src).endswith(".tmp"):
            raise PowerCut
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(PowerCut):
        st_.save("params", b"never-committed")
    monkeypatch.setattr(os, "replace", real_replace)
    assert (tmp_path / "params.gst.tmp").exists()  # the new copy was written...
    res = DirNvStore(tmp_path).load("params")  # ...but after "reboot" the last good one wins
    assert res.payload == b"committed"
    assert res.interrupted
    assert not (tmp_path / "params.gst.tmp").exists()


@pytest.mark.req("PERS-004")
def test_power_cut_after_rotation_uses_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    st_ = DirNvStore(tmp_path)
    st_.save("k", b"v1")
    real_replace = os.replace
    calls: list[str] = []

    def cut(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        calls.append(str(dst))
        if str(src).endswith(".tmp"):
            raise PowerCut  # primary already moved to .bak, new one not in place yet
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(PowerCut):
        st_.save("k", b"v2")
    monkeypatch.setattr(os, "replace", real_replace)
    assert calls[0].endswith("k.gst.bak")
    res = DirNvStore(tmp_path).load("k")
    assert (res.source, res.payload) == ("backup", b"v1")
    assert "primary copy is missing" in res.problems


@pytest.mark.req("PERS-006")
def test_io_error_is_a_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    st_ = DirNvStore(tmp_path)
    st_.save("k", b"v1")

    def disk_full(name: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(st_, "_write_durable", disk_full)
    with pytest.raises(NvStoreError, match="cannot save 'k': No space left on device"):
        st_.save("k", b"v2")
    assert st_.load("k").payload == b"v1"


def test_bad_keys_are_refused() -> None:
    with pytest.raises(NvStoreError, match="storage key"):
        MemNvStore().save("../etc/passwd", b"")


@pytest.mark.req("PERS-002")
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_unpack_silently(raw: bytes) -> None:
    try:
        unpack_record(raw)
    except NvStoreError:
        return
    assert raw == pack_record(raw[HEADER_LEN:])  # only a real record is accepted


@pytest.mark.req("PERS-002")
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(0, 10_000), st.integers(1, 255))
def test_any_single_damaged_byte_is_detected(payload: bytes, pos: int, flip: int) -> None:
    rec = bytearray(pack_record(payload))
    rec[pos % len(rec)] ^= flip
    with pytest.raises(NvStoreError):
        unpack_record(bytes(rec))


@pytest.mark.req("PERS-008")
@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64), st.binary(max_size=64))
def test_load_never_raises_on_garbage(primary: bytes, backup: bytes) -> None:
    st_ = MemNvStore()
    st_.files.update({"k.gst": primary, "k.gst.bak": backup, "k.gst.tmp": b"x"})
    res = st_.load("k")
    assert res.interrupted
    assert res.source in ("primary", "backup", "none")


@pytest.mark.req("PERS-003")
def test_flight_reports_a_recovered_parameter_file(tmp_path: Path) -> None:
    fs = build_flight(storage_dir=tmp_path)
    fs.prm.set("health.max_restarts", 7)
    fs.prm.save()
    fs.prm.set("health.max_restarts", 9)
    fs.prm.save()
    p = tmp_path / "params.gst"
    p.write_bytes(p.read_bytes()[:20])  # torn by a power cut
    fs2 = build_flight(storage_dir=tmp_path)
    assert fs2.components["health"].param("max_restarts") == 7
    names = [e.name for e in fs2.recent_events]
    assert "persist.RECOVERED" in names
    assert fs2.telemetry("persist.recoveries") == 1
