"""The on-board CFDP component over the real space link: files down, files and models up.

A ground CFDP entity talks to the flight through GroundLink (SDLS, COP-1, CLTUs) and
RadioHost, the path a station uses; commands go by PUS service 8. Simulated time only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from fsw.ai.payload import Payload
from fsw.ai.scrubber import Scrubber
from fsw.app import build_flight
from fsw.ccsds import GroundLink
from fsw.ccsds.cfdp import CFDP_APID, UPLINK_MAX_PDU, CfdpConfig, CfdpEntity
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.ccsds.spacepacket import PacketType
from fsw.comms.radio import RadioHost
from fsw.core.clock import SimClock
from fsw.core.flight import FlightSoftware
from fsw.core.testing import CommandEncoder
from fsw.hal.interfaces import Hal, ModelFiles
from fsw.storage.files import FileStore

SMALL_MODEL = Path(__file__).resolve().parents[1] / "fsw" / "ai" / "artifacts" / "cloudnet-s.gnm"


def _hal() -> Hal:
    """No hardware but the small model (the large one absent)."""
    return dataclasses.replace(
        Hal.none(), models=ModelFiles(SMALL_MODEL, SMALL_MODEL.with_name("absent.gnm"))
    )


class Pass:
    """Flight + radio + a ground (link and CFDP entity), stepped one second at a time."""

    def __init__(self, tmp: Path) -> None:
        cfg = LinkConfig.load(TEST_KEY_FILE)
        hal = _hal()
        self.fs: FlightSoftware = build_flight(
            clock=SimClock(), link_config=cfg, files_dir=tmp / "sat", hal=hal
        )
        self.radio = RadioHost(self.fs)
        self.link = GroundLink(cfg)
        (tmp / "gnd").mkdir()
        self.ground = CfdpEntity(
            CfdpConfig(
                local_id=2, remote_id=1, packet_type=PacketType.TC, max_pdu_len=UPLINK_MAX_PDU
            ),
            tmp / "gnd",
        )
        self.enc = CommandEncoder(self.fs)
        self.t = 0.0
        self.cfdp = self.fs.component("cfdp")

    def command(self, name: str, **args: Any) -> None:
        self.radio.uplink(self.link.send_tc(self.enc.encode(name, **args), now_s=self.t))

    def run(self, seconds: int, up_bytes: int = 8_000, down_packets: int = 60) -> None:
        for _ in range(seconds):
            self.t += 1.0
            for pkt in self.ground.take(self.t, up_bytes):
                self.radio.uplink(self.link.send_tc(pkt, now_s=self.t))
            for cltu in self.link.poll(self.t):
                self.radio.uplink(cltu)
            self.fs.step(1.0)
            data = self.radio.downlink(max_packets=down_packets, idle=True)
            for pkt in self.link.receive(data, now_s=self.t):
                if ((pkt[0] & 7) << 8) | pkt[1] == CFDP_APID:
                    self.ground.receive(pkt)
            self.ground.poll(self.t)

    def events(self, name: str) -> list[str]:
        return [e.text for e in self.fs.recent_events if e.name == f"cfdp.{name}"]


@pytest.mark.req("CFDP-001")
def test_an_on_board_file_goes_down_by_command_byte_identical(tmp_path: Path) -> None:
    p = Pass(tmp_path)
    data = random.Random(5).randbytes(60_000)
    (tmp_path / "sat" / "logs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "sat" / "logs" / "seu.log").write_bytes(data)
    p.command("cfdp.FILE_SEND", path="logs/seu.log", dest="sat1/seu.log", acknowledged=True)
    p.run(20)
    assert (tmp_path / "gnd" / "sat1" / "seu.log").read_bytes() == data
    assert p.fs.telemetry("cfdp.files_sent") == 1 and p.events("FILE_DELIVERED")


@pytest.mark.req("CFDP-002")
def test_a_model_uploaded_by_class_2_is_activated_and_rolled_back_by_command(
    tmp_path: Path,
) -> None:
    p = Pass(tmp_path)
    payload = p.fs.component("payload")
    assert isinstance(payload, Payload)
    original = payload.models["small"]
    (tmp_path / "gnd" / "cloudnet-s-v2.gnm").write_bytes(SMALL_MODEL.read_bytes())
    tr = p.ground.put("cloudnet-s-v2.gnm", "uplink/models/cloudnet-s-v2.gnm")
    p.run(60)
    assert tr.state == "finished", tr
    assert p.events("FILE_RECEIVED") and not p.events("UPLOAD_REFUSED")
    p.command("cfdp.MODEL_ACTIVATE", variant="small", path="uplink/models/cloudnet-s-v2.gnm")
    p.run(2)
    assert p.events("MODEL_ACTIVATED")
    assert payload.models["small"] is not original
    scrubber = p.fs.component("scrubber")
    assert isinstance(scrubber, Scrubber) and payload.models["small"] in scrubber.models
    # A reboot flies the activated model again (it is remembered in the file store) ...
    rebooted = build_flight(clock=SimClock(), files_dir=tmp_path / "sat", hal=_hal())
    flying = rebooted.component("payload")
    assert isinstance(flying, Payload) and flying.models["small"] is not None
    assert flying.models["small"].golden_paths[0].name == "cloudnet-s-v2.gnm"
    p.command("cfdp.MODEL_ROLLBACK", variant="small")
    p.run(2)
    assert p.events("MODEL_ROLLED_BACK")
    assert payload.models["small"] is original
    # ... and after the rollback, the boot model.
    again = build_flight(clock=SimClock(), files_dir=tmp_path / "sat", hal=_hal())
    back = again.component("payload")
    assert isinstance(back, Payload) and back.models["small"] is not None
    assert back.models["small"].golden_paths[0] == SMALL_MODEL


@pytest.mark.req("CFDP-003")
def test_a_corrupted_model_upload_is_refused_and_the_running_model_stays(tmp_path: Path) -> None:
    p = Pass(tmp_path)
    payload = p.fs.component("payload")
    assert isinstance(payload, Payload)
    original = payload.models["small"]
    blob = bytearray(SMALL_MODEL.read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one bit of the weights: the CFDP checksum is of this file
    (tmp_path / "gnd" / "bad.gnm").write_bytes(bytes(blob))
    (tmp_path / "gnd" / "short.gnm").write_bytes(SMALL_MODEL.read_bytes()[:20_000])
    p.ground.put("bad.gnm", "uplink/models/bad.gnm")
    p.ground.put("short.gnm", "uplink/models/short.gnm")
    p.run(60)
    refused = p.events("UPLOAD_REFUSED")
    assert len(refused) == 2, refused
    assert not (tmp_path / "sat" / "uplink" / "models" / "bad.gnm").exists()
    p.command("cfdp.MODEL_ACTIVATE", variant="small", path="uplink/models/bad.gnm")
    p.run(2)
    assert p.events("MODEL_REFUSED")
    assert payload.models["small"] is original
    assert p.fs.telemetry("cfdp.uploads_refused") == 2


@pytest.mark.req("CFDP-004")
def test_the_ground_may_not_write_outside_the_upload_folder(tmp_path: Path) -> None:
    p = Pass(tmp_path)
    (tmp_path / "gnd" / "x.bin").write_bytes(b"x" * 1000)
    (tmp_path / "sat" / "logs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "sat" / "logs" / "fsw.log").write_bytes(b"flight log")
    p.ground.put("x.bin", "logs/fsw.log")
    p.run(10)
    assert (tmp_path / "sat" / "logs" / "fsw.log").read_bytes() == b"flight log"
    assert "uplink/" in p.events("UPLOAD_REFUSED")[0]


_KILLED_FLIGHT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fsw.ccsds.cfdp import CfdpConfig, CfdpEntity, StoredSeqCount
    root = Path(sys.argv[1])
    sat = CfdpEntity(CfdpConfig(local_id=1, remote_id=2), root / "sat",
                     seq=StoredSeqCount(root / "sat" / ".cfdp-seq"))
    gnd = CfdpEntity(CfdpConfig(local_id=2, remote_id=1), root / "gnd")
    tr = gnd.put("big.bin", "uplink/big.bin")
    t = 0.0
    while True:  # a slow link: the parent kills us mid-transfer
        t += 1.0
        for pkt in gnd.take(t, 4000):
            sat.receive(pkt)
        sat.poll(t)
        for pkt in sat.take(t, 4000):
            gnd.receive(pkt)
        gnd.poll(t)
        part = list((root / "sat" / ".incoming").glob("*.part"))
        if part and part[0].stat().st_size > 100_000:
            print("mid-transfer", flush=True)
            time.sleep(60)
    """
)


@pytest.mark.req("CFDP-006")
def test_kill_9_mid_transfer_leaves_no_partial_file_and_the_upload_restarts_cleanly(
    tmp_path: Path,
) -> None:
    """The receiving process dies (SIGKILL) with a file half written: after the restart
    nothing half-written carries the file's name, and sending it again delivers it."""
    (tmp_path / "sat").mkdir()
    (tmp_path / "gnd").mkdir()
    data = random.Random(7).randbytes(400_000)
    (tmp_path / "gnd" / "big.bin").write_bytes(data)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_FLIGHT, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "mid-transfer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "sat" / "uplink" / "big.bin").exists()  # never under its name
    # Restart: a new entity on the same directory; the ground sends the file again.
    sat = CfdpEntity(CfdpConfig(local_id=1, remote_id=2), tmp_path / "sat")
    gnd = CfdpEntity(CfdpConfig(local_id=2, remote_id=1), tmp_path / "gnd")
    tr = gnd.put("big.bin", "uplink/big.bin")
    for t in range(100):
        for pkt in gnd.take(float(t), 50_000):
            sat.receive(pkt)
        sat.poll(float(t))
        for pkt in sat.take(float(t), 50_000):
            gnd.receive(pkt)
        gnd.poll(float(t))
    assert tr.state == "finished"
    assert (tmp_path / "sat" / "uplink" / "big.bin").read_bytes() == data


@pytest.mark.req("CFDP-007")
@pytest.mark.parametrize("bad", [b"", b"\x17\xfd", b"\x17\xfd\xc0\x00\x00\x05" + bytes(6)])
def test_junk_on_the_cfdp_apid_is_counted_not_dispatched_as_a_command(
    tmp_path: Path, bad: bytes
) -> None:
    p = Pass(tmp_path)
    p.fs.uplink_packet(bad)
    p.fs.step(1.0)
    routed = len(bad) >= 2
    assert p.fs.telemetry("cfdp.pdu_errors") == (1 if routed else 0)


_KILLED_SENDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from fsw.ccsds.cfdp import CfdpConfig, CfdpEntity
    root = Path(sys.argv[1])
    sat = CfdpEntity(CfdpConfig(local_id=1, remote_id=2), root / "sat",
                     journal=root / "sat" / ".cfdp-outgoing.json")
    sat.put("products/f.npy", "products/f.npy")
    t = 0.0
    while True:  # data goes nowhere; the parent kills us while it is being sent
        t += 1.0
        sat.take(t, 4000)
        sat.poll(t)
        if t == 20:
            print("mid-transfer", flush=True)
            time.sleep(60)
    """
)


@pytest.mark.req("CFDP-006")
def test_kill_9_of_the_sender_mid_transfer_and_the_restarted_entity_sends_it_again(
    tmp_path: Path,
) -> None:
    (tmp_path / "sat" / "products").mkdir(parents=True, exist_ok=True)
    (tmp_path / "gnd").mkdir()
    data = random.Random(8).randbytes(150_000)
    (tmp_path / "sat" / "products" / "f.npy").write_bytes(data)
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SENDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "mid-transfer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    sat = CfdpEntity(
        CfdpConfig(local_id=1, remote_id=2),
        tmp_path / "sat",
        journal=tmp_path / "sat" / ".cfdp-outgoing.json",
    )
    assert sat.stats["restarted_out"] == 1
    gnd = CfdpEntity(CfdpConfig(local_id=2, remote_id=1), tmp_path / "gnd")
    for t in range(60):
        for pkt in sat.take(float(t), 50_000):
            gnd.receive(pkt)
        gnd.poll(float(t))
        for pkt in gnd.take(float(t), 50_000):
            sat.receive(pkt)
        sat.poll(float(t))
    assert (tmp_path / "gnd" / "products" / "f.npy").read_bytes() == data
    assert json.loads((tmp_path / "sat" / ".cfdp-outgoing.json").read_text()) == []


@pytest.mark.req("CFDP-008")
def test_data_products_go_down_by_themselves_most_valuable_first(tmp_path: Path) -> None:
    """In contact the entity sends the file store's pending products, class 2, the most
    valuable first, ``product_transfers`` at a time; each is marked delivered when the
    ground has all its files, and lands there byte-identical."""
    import numpy as np

    p = Pass(tmp_path)
    files = p.fs.component("files")
    assert isinstance(files, FileStore)
    rng = np.random.default_rng(3)
    for frame_id, value in ((1, 0.2), (2, 0.9), (3, 0.5)):
        pixels = rng.uniform(0.0, 0.4, (4, 3, 32, 32)).astype(np.float32)
        assert files.add_product(frame_id, pixels, {"frame": frame_id}, value) is not None
    p.fs.prm.set("cfdp.product_transfers", 1)
    order: list[str] = []
    for _ in range(120):
        p.run(1)
        order += [
            n
            for n in ("frame-0000000002", "frame-0000000003", "frame-0000000001")
            if n not in order and files.products[n].delivered
        ]
        if len(order) == 3:
            break
    assert order == ["frame-0000000002", "frame-0000000003", "frame-0000000001"]
    s = files.summary()
    assert s["delivered"] == 3 and s["value_delivered"] == pytest.approx(1.6)
    for name in order:
        for suffix in (".png", ".npy", ".json"):
            rel = Path("products") / f"{name}{suffix}"
            assert (tmp_path / "gnd" / rel).read_bytes() == (tmp_path / "sat" / rel).read_bytes()
    assert p.fs.telemetry("cfdp.files_sent") == 9
    assert not p.events("FILE_DELIVERED")  # counted, not one event per product file
    p.run(30)
    assert p.fs.telemetry("cfdp.files_sent") == 9  # nothing sent twice


@pytest.mark.req("CFDP-008")
def test_no_products_go_down_when_the_operator_sets_product_transfers_to_zero(
    tmp_path: Path,
) -> None:
    import numpy as np

    p = Pass(tmp_path)
    files = p.fs.component("files")
    assert isinstance(files, FileStore)
    files.add_product(1, np.full((1, 3, 8, 8), 0.1, np.float32), {}, 0.5)
    p.fs.prm.set("cfdp.product_transfers", 0)
    p.run(30)
    assert files.summary()["delivered"] == 0
    assert p.fs.telemetry("cfdp.files_sent") == 0
