"""The ground's CFDP side: a GroundSession with GroundFiles fetches and sends files over
the real link; what lands is in the directory and in the archive's ``files`` table."""

from __future__ import annotations

import json
import random
from pathlib import Path

from typer.testing import CliRunner

from fsw.app import build_flight
from fsw.ccsds import TEST_KEY_FILE, LinkConfig
from fsw.comms.radio import RadioHost
from fsw.core.clock import SimClock
from fsw.core.dictionary import build_dictionary
from ground import Archive
from ground.dictionary import Dictionary
from ground.files import GroundFiles, list_files
from ground.files_cli import files_app
from ground.session import GroundSession


class Station:
    def __init__(self, tmp: Path) -> None:
        cfg = LinkConfig.load(TEST_KEY_FILE)
        self.fs = build_flight(clock=SimClock(), link_config=cfg, files_dir=tmp / "sat")
        self.radio = RadioHost(self.fs)
        d = Dictionary(json.loads(json.dumps(build_dictionary(self.fs))))
        self.archive_path = tmp / "archive.sqlite"
        self.archive = Archive(self.archive_path)
        self.session = GroundSession(d, cfg, archive=self.archive)
        self.files = GroundFiles(tmp / "files", self.archive_path)
        self.session.files = self.files
        self.t = 0.0

    def send(self, name: str, **args: object) -> None:
        _, cltus = self.session.send(name, self.t, **args)
        for c in cltus:
            self.radio.uplink(c)

    def run(self, seconds: int) -> None:
        for _ in range(seconds):
            self.t += 1.0
            for c in self.session.poll(self.t):
                self.radio.uplink(c)
            self.fs.step(1.0)
            self.session.receive(self.radio.downlink(max_packets=80, idle=True), self.t)

    def close(self) -> None:
        self.archive.close()
        self.files.close()


def test_a_file_fetched_from_board_lands_in_the_directory_and_the_archive(tmp_path: Path) -> None:
    st = Station(tmp_path)
    product = random.Random(3).randbytes(30_000)
    (tmp_path / "sat" / "products").mkdir(parents=True, exist_ok=True)
    (tmp_path / "sat" / "products" / "f001.npy").write_bytes(product)
    (tmp_path / "sat" / "products" / "f001.json").write_text('{"confidence": 0.93}')
    st.send("cfdp.FILE_SEND", path="products/f001.json", dest="products/f001.json", acknowledged=1)
    st.send("cfdp.FILE_SEND", path="products/f001.npy", dest="products/f001.npy", acknowledged=1)
    st.run(30)
    st.close()
    assert (tmp_path / "files" / "products" / "f001.npy").read_bytes() == product
    rows = {r.name: r for r in list_files(st.archive_path)}
    row = rows["products/f001.npy"]
    assert (row.direction, row.state, row.size) == ("in", "finished", len(product))
    assert row.metadata == {"confidence": 0.93}  # its sidecar, which arrived first
    assert row.transaction_id.startswith("1-") and len(row.sha256) == 64
    out = CliRunner().invoke(files_app, ["list", "--archive", str(st.archive_path), "--json"])
    assert out.exit_code == 0 and {r["name"] for r in json.loads(out.output)} == set(rows)


def test_a_file_sent_up_from_the_ground_reaches_the_upload_folder(tmp_path: Path) -> None:
    st = Station(tmp_path)
    data = random.Random(4).randbytes(12_000)
    (tmp_path / "plan.bin").write_bytes(data)
    tr = st.files.put(tmp_path / "plan.bin", "uplink/plan.bin")
    st.run(30)
    st.close()
    assert tr.state == "finished"
    assert (tmp_path / "sat" / "uplink" / "plan.bin").read_bytes() == data
    assert st.fs.telemetry("cfdp.files_received") == 1
