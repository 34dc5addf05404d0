"""PUS service 20: get, set, validators, save, reload after reboot and power cuts."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest

from fsw.app import build_flight
from fsw.ccsds import PusTc
from fsw.core import Component, FlightSoftware, MemNvStore, Param
from fsw.core.testing import CommandEncoder, decode_downlink, request_id_of, verification


def _even(value: Any) -> str | None:
    return None if value % 2 == 0 else "must be even"


class Imager(Component):
    NAME = "imager"
    PARAMETERS = (
        Param("gain", "f32", default=1.0, min=0.0, max=8.0, id=1),
        Param("binning", "u8", default=2, min=1, max=8, validator=_even, id=2),
        Param("model", "enum", default="SMALL", labels=("SMALL", "LARGE"), id=3),
        Param("window_lo", "u16", default=10, id=4),
        Param("window_hi", "u16", default=100, id=5),
    )

    def on_init(self) -> None:
        self.changes: list[tuple[str, Any]] = []

    def validate_param(self, name: str, value: Any) -> str | None:
        if name == "window_lo" and value >= self.param("window_hi"):
            return f"window_lo {value} must stay below window_hi {self.param('window_hi')}"
        return None

    def on_param_changed(self, name: str, value: Any) -> None:
        self.changes.append((name, value))


def boot(store: MemNvStore | None = None, storage_dir: Path | None = None) -> FlightSoftware:
    fs = build_flight(components={16: Imager()}, store=store, storage_dir=storage_dir)
    fs.step(0.0)
    fs.downlink_packets()
    return fs


def pid(fs: FlightSoftware, name: str) -> int:
    return fs.registry.param_by_name[name].id


def send(fs: FlightSoftware, tc: bytes) -> tuple[list[tuple[int, str | None]], list[Any]]:
    fs.uplink_packet(tc)
    fs.step(0.0)
    recs = decode_downlink(fs)
    return verification(recs, request_id_of(tc)), recs


@pytest.mark.req("PRM-001")
def test_get_and_set() -> None:
    fs = boot()
    enc = CommandEncoder(fs)
    v, _ = send(
        fs,
        enc.encode(
            "PARAM_SET",
            params=[
                {"param_id": pid(fs, "imager.gain"), "value": 2.5},
                {"param_id": pid(fs, "imager.model"), "value": "LARGE"},
            ],
        ),
    )
    assert v == [(1, None), (3, None), (7, None)]
    img = fs.components["imager"]
    assert (img.param("gain"), img.param("model")) == (2.5, "LARGE")
    assert img.changes == [("gain", 2.5), ("model", "LARGE")]  # type: ignore[attr-defined]
    v, recs = send(
        fs,
        enc.encode(
            "PARAM_GET",
            param_ids=[
                {"param_id": pid(fs, "imager.model")},
                {"param_id": pid(fs, "imager.binning")},
            ],
        ),
    )
    (rep,) = [r for r in recs if (r.service, r.subservice) == (20, 2)]
    assert rep.fields == {
        "params": [
            {"param_id": pid(fs, "imager.model"), "value": "LARGE"},
            {"param_id": pid(fs, "imager.binning"), "value": 2},
        ]
    }
    assert fs.telemetry("prm.last_set_id") == pid(fs, "imager.model")


@pytest.mark.req("PRM-002")
def test_validator_reject_is_a_completion_failure_and_old_value_stays() -> None:
    fs = boot()
    enc = CommandEncoder(fs)
    v, recs = send(
        fs,
        enc.encode(
            "PARAM_SET",
            params=[
                {"param_id": pid(fs, "imager.gain"), "value": 4.0},
                {"param_id": pid(fs, "imager.binning"), "value": 3},
            ],
        ),
    )
    assert v == [(1, None), (3, None), (8, "VALUE_REJECTED")]
    (fail,) = [r for r in recs if (r.service, r.subservice) == (1, 8)]
    assert "imager.binning=3 refused: must be even; value stays 2" in fail.fields["reason"]
    img = fs.components["imager"]
    assert (img.param("gain"), img.param("binning")) == (1.0, 2)  # all or nothing
    v, _ = send(
        fs,
        enc.encode("PARAM_SET", params=[{"param_id": pid(fs, "imager.window_lo"), "value": 500}]),
    )
    assert v[-1] == (8, "VALUE_REJECTED")
    assert any(e.name == "prm.REFUSED" for e in fs.recent_events)


@pytest.mark.req("PRM-003")
def test_out_of_range_and_unknown_are_acceptance_failures() -> None:
    fs = boot()
    gain = pid(fs, "imager.gain")
    raw = PusTc(
        apid=100, service=20, subservice=3, app_data=struct.pack(">HHf", 1, gain, 9.0), seq_count=3
    ).encode()
    v, _recs = send(fs, raw)
    assert v == [(2, "ARG_OUT_OF_RANGE")]
    raw = PusTc(
        apid=100, service=20, subservice=1, app_data=struct.pack(">HH", 1, 0xEEEE), seq_count=4
    ).encode()
    v, _ = send(fs, raw)
    assert v == [(1, None), (3, None), (8, "NOT_FOUND")]
    raw = PusTc(
        apid=100,
        service=20,
        subservice=3,
        app_data=struct.pack(">HHf", 1, 0xEEEE, 1.0),
        seq_count=5,
    ).encode()
    v, _ = send(fs, raw)
    assert v == [(2, "NOT_FOUND")]
    assert fs.components["imager"].param("gain") == 1.0


@pytest.mark.req("PRM-004")
def test_save_and_reload_after_reboot(tmp_path: Path) -> None:
    fs = boot(storage_dir=tmp_path)
    enc = CommandEncoder(fs)
    send(
        fs,
        enc.encode(
            "PARAM_SET",
            params=[
                {"param_id": pid(fs, "imager.gain"), "value": 3.0},
                {"param_id": pid(fs, "imager.model"), "value": "LARGE"},
            ],
        ),
    )
    fs2 = boot(storage_dir=tmp_path)
    assert fs2.components["imager"].param("gain") == 1.0  # not saved yet
    v, _ = send(fs, enc.encode("PARAM_SAVE"))
    assert v[-1] == (7, None)
    fs3 = boot(storage_dir=tmp_path)
    img = fs3.components["imager"]
    assert (img.param("gain"), img.param("model")) == (3.0, "LARGE")
    assert any(e.name == "prm.LOADED" for e in fs3.recent_events)


@pytest.mark.req("PRM-007")
def test_the_boot_counts_every_restored_value_core_and_mission_alike(tmp_path: Path) -> None:
    fs = boot(storage_dir=tmp_path)
    fs.prm.set("health.max_restarts", 5)  # a core parameter
    fs.prm.set("imager.gain", 3.0)  # a mission component's, added after the core
    fs.prm.save()
    saved = len(fs.registry.param_by_id)
    fs2 = boot(storage_dir=tmp_path)
    assert fs2.registry.param_by_name["health.max_restarts"].value == 5
    assert fs2.components["imager"].param("gain") == 3.0
    loaded = [e for e in fs2.recent_events if e.name == "prm.LOADED"]
    assert [e.args for e in loaded] == [(saved,)]  # one event at boot, with all of them
    assert loaded[0].text == f"{saved} saved parameter values loaded"
    names = [e.name for e in fs2.recent_events]
    assert names.index("exec.BOOT") < names.index("prm.LOADED")


@pytest.mark.req("PERS-004", "PRM-006")
def test_power_cut_during_save_keeps_the_last_saved_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs = boot(storage_dir=tmp_path)
    fs.prm.set("imager.gain", 2.0)
    fs.prm.save()
    fs.prm.set("imager.gain", 6.0)

    class PowerCut(BaseException):
        pass

    real = os.replace

    def cut(src: Any, dst: Any) -> None:
        if str(src).endswith(".tmp"):
            raise PowerCut  # the new file is written and fsynced, not yet renamed
        real(src, dst)

    monkeypatch.setattr(os, "replace", cut)
    with pytest.raises(PowerCut):
        send(fs, CommandEncoder(fs).encode("PARAM_SAVE"))
    monkeypatch.setattr(os, "replace", real)
    fs2 = boot(storage_dir=tmp_path)  # the reboot after the power cut
    assert fs2.components["imager"].param("gain") == 2.0
    assert "persist.INTERRUPTED_SAVE" in [e.name for e in fs2.recent_events]


@pytest.mark.req("PERS-003")
def test_corrupt_file_uses_last_good_copy_and_reports(tmp_path: Path) -> None:
    fs = boot(storage_dir=tmp_path)
    fs.prm.set("imager.gain", 2.0)
    fs.prm.save()
    fs.prm.set("imager.gain", 5.0)
    fs.prm.save()
    path = tmp_path / "params.gst"
    data = bytearray(path.read_bytes())
    data[30] ^= 0x40  # one flipped bit on the card
    path.write_bytes(bytes(data))
    fs2 = boot(storage_dir=tmp_path)
    assert fs2.components["imager"].param("gain") == 2.0
    rec = next(e for e in fs2.recent_events if e.name == "persist.RECOVERED")
    assert "CRC" in rec.text and rec.text.startswith("params:")


@pytest.mark.req("PERS-006", "PRM-006")
def test_save_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemNvStore()
    fs = boot(store)

    def full(name: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "_write_durable", full)
    v, _recs = send(fs, CommandEncoder(fs).encode("PARAM_SAVE"))
    assert v[-1] == (8, "EXECUTION_ERROR")
    assert fs.telemetry("persist.save_failures") == 1
    assert any(e.name == "persist.SAVE_FAILED" for e in fs.recent_events)


@pytest.mark.req("PRM-005")
def test_saved_value_no_longer_valid_is_refused_at_boot() -> None:
    store = MemNvStore()
    store.save(
        "params", b'{"version":1,"values":{"imager.binning":5,"imager.gain":7.5,"gone.param":1}}'
    )
    fs = boot(store)
    img = fs.components["imager"]
    assert (img.param("binning"), img.param("gain")) == (2, 7.5)
    refused = [e for e in fs.recent_events if e.name == "prm.LOAD_REFUSED"]
    assert len(refused) == 1 and "must be even" in refused[0].text
