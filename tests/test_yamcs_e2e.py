"""A stock Yamcs 5.12 flies the SITL satellite (slow; docs/yamcs.md).

One Yamcs process (the ``yamcs`` extra) on ephemeral loopback ports, configured by
``ground.yamcs.config`` from the test key file, with SDLS on (SPI 3, AES-256-GCM, the
standard authentication mask); the SITL flies in this process on a datagram link, so the
test can read what the flight itself reports. For the alarm check the exported dictionary
gets one extra limit (``cmd.tc_accepted`` yellow above 0): the first command accepted on
board must raise a Yamcs alarm.

Elsewhere these skip with the reason; under CI=true a missing piece fails them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.comms.cfdp import Cfdp
from ground.dictionary import Dictionary
from ground.yamcs.config import CFDP_BUCKET, YamcsPlan, write_config
from ground.yamcs.server import YamcsServer, ensure_cop1, yamcs_installed

pytestmark = pytest.mark.slow
CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = Path("/usr/bin/chromium")
LIMITED = "cmd.tc_accepted"


def _need(problem: str | None) -> None:
    if problem is None:
        return
    if CI:
        pytest.fail(f"CI=true but {problem} (make yamcs installs it)")
    pytest.skip(problem)


def _port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dictionary() -> Dictionary:
    doc = json.loads(
        subprocess.run(
            [sys.executable, "-m", "gnomon.cli", "dict", "export", "--indent", "0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    for ch in doc["telemetry"]:
        if ch["name"] == LIMITED:
            ch["limits"]["yellow_high"] = 0.0
    return Dictionary(doc)


@dataclasses.dataclass
class Mission:
    plan: YamcsPlan
    server: YamcsServer
    client: Any
    processor: Any
    dictionary: Dictionary
    started_s: float
    link_config: LinkConfig
    sitl: Any = None
    transport: Any = None
    flight: threading.Thread | None = None
    stop: threading.Event = dataclasses.field(default_factory=threading.Event)

    def fly(self) -> None:
        """Boot a fresh SITL satellite (new flight software, FARM-1 V(R) = 0) on the link."""
        from fsw.link import open_link
        from hil.sim.cli import CLEAN_LINK_BPS
        from hil.sim.sitl import Sitl
        from hil.sim.sitl_config import make_config

        sc = make_config("leo550-sso-6u", orbits=3.0, seed=1)
        channel = dataclasses.replace(
            sc.channel,
            passes_only=False,
            uplink_ber=0.0,
            downlink_ber=0.0,
            uplink_drop=0.0,
            downlink_drop=0.0,
            downlink_bps=CLEAN_LINK_BPS,
        )
        self.sitl = Sitl(
            "leo550-sso-6u", dataclasses.replace(sc, channel=channel), with_ground=False
        )
        # Yamcs 5.12.8 checks only the modular checksum (or none); the flight's default is
        # CRC-32: configured before the entity's first transfer (docs/yamcs.md, CFDP).
        from spacepackets.cfdp import ChecksumType

        cfdp = self.sitl.fs.component("cfdp")
        assert isinstance(cfdp, Cfdp)
        cfdp.configure(dataclasses.replace(cfdp.config, checksum=ChecksumType.MODULAR))
        self.stop = threading.Event()
        self.transport = open_link(
            self.plan.sitl_link, "spacecraft", tm_frame_len=self.link_config.tm_frame_len
        )
        self.flight = threading.Thread(
            target=self.sitl.serve,
            args=(self.transport,),
            kwargs={"stop": self.stop.is_set},
            daemon=True,
        )
        self.flight.start()

    def land(self) -> None:
        """Stop the satellite and free its port."""
        self.stop.set()
        if self.flight is not None:
            self.flight.join(30)
        if self.transport is not None:
            self.transport.close()
        self.flight = self.transport = None


@pytest.fixture(scope="module")
def mission(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mission]:
    _need(yamcs_installed())
    from yamcs.client import YamcsClient

    cfg = LinkConfig.load(TEST_KEY_FILE)
    plan = YamcsPlan.make(
        cfg,
        http_port=_port(socket.SOCK_STREAM),
        tm_port=_port(socket.SOCK_DGRAM),
        tc_port=_port(socket.SOCK_DGRAM),
    )
    assert plan.spi == 3  # the AES-256-GCM SA
    root = tmp_path_factory.mktemp("yamcs")
    dictionary = _dictionary()
    written = write_config(root / "config", cfg, dictionary, plan)
    server = YamcsServer(written.etc, plan.url, data_dir=root / "data")
    mission = None
    try:
        started = server.start(timeout_s=120)
        client = YamcsClient(plan.url)
        processor = client.get_processor("gnomon", "realtime")
        mission = Mission(plan, server, client, processor, dictionary, started, cfg)
        mission.fly()
        ensure_cop1(client, timeout_s=60)
        print(f"\nYamcs started in {started:.1f} s, RSS {server.rss_mb():.0f} MB")
        print(f"Yamcs log: {server.log_path}")
        yield mission
        print(f"Yamcs RSS at the end: {server.rss_mb():.0f} MB")
    finally:
        if mission is not None:
            mission.land()
        server.stop()


def _fresh(processor: Any, name: str, timeout_s: float = 30.0) -> Any:
    return processor.get_parameter_value(name, from_cache=False, timeout=timeout_s)


def test_yamcs_flies_the_sitl_satellite_with_sdls(mission: Mission) -> None:
    p = mission.processor
    conn = p.create_command_connection()
    # PUS-1 verifiers: Yamcs' history goes to "completed" from Gnomon's (1,7).
    ping = conn.issue("/GNOMON/cmd/PING")
    ping.await_complete(timeout=60)
    assert ping.is_success(), ping.acknowledgments
    assert ping.acknowledgments["Verifier_Completed"].status == "OK"

    # A decoded HK value equals what the flight reports (core HK, every second).
    flight_value = mission.sitl.fs.telemetry(LIMITED)
    assert flight_value >= 1
    value = _fresh(p, f"/GNOMON/{LIMITED.replace('.', '/')}")
    assert value.eng_value == mission.sitl.fs.telemetry(LIMITED)

    # The limit added to the dictionary (yellow above 0) raised a Yamcs alarm.
    assert value.monitoring_result == "WARNING"
    alarms = {a.name: a.severity for a in p.list_alarms()}
    assert alarms.get(f"/GNOMON/{LIMITED.replace('.', '/')}") == "WARNING", alarms

    # An on-board parameter set through Yamcs, read back (PARAM_GET -> (20,2)).
    set_cmd = conn.issue("/GNOMON/payload/SET_PARAM_confidence_threshold", args={"value": 0.625})
    set_cmd.await_complete(timeout=60)
    assert set_cmd.is_success(), set_cmd.acknowledgments
    param_id = mission.dictionary.param("payload.confidence_threshold").id
    get = conn.issue("/GNOMON/prm/PARAM_GET", args={"param_ids": [param_id]})
    read = _fresh(p, "/GNOMON/payload/param_confidence_threshold")
    get.await_complete(timeout=60)
    assert get.is_success(), get.acknowledgments
    assert read.eng_value == pytest.approx(0.625)

    # PUS-5 events become Yamcs events with the flight's own message text.
    boot = next(e for e in mission.sitl.fs.recent_events if e.name == "exec.BOOT")
    assert _yamcs_events(mission, "exec.BOOT") == [boot.text]

    # No frame Yamcs could not take.
    extra = mission.client.get_link("gnomon", "TM_FRAMES").get_info().extra
    print(f"TM link: {extra}")
    assert int(extra["Valid frames"]) > 0
    assert int(extra["Invalid frames"]) == 0


def _yamcs_events(mission: Mission, event_type: str) -> list[str]:
    """The messages of the archived Yamcs events of ``event_type`` (waits up to 30 s)."""
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        url = f"http://{mission.plan.url}/api/archive/gnomon/events?limit=200"
        with urllib.request.urlopen(url, timeout=10) as resp:
            events = json.load(resp).get("events", [])
        found = [e["message"] for e in events if e.get("type") == event_type]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_the_web_ui_shows_a_live_gnomon_parameter(mission: Mission) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright is not installed (pip install -e '.[dev]')")
        raise
    _need(None if CHROMIUM.exists() else f"{CHROMIUM} is missing (apt-get install chromium)")
    name = "/GNOMON/exec/met_s"
    shot = Path(os.environ.get("GNOMON_ARTIFACTS", "out")) / "yamcs-webui.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(mission.plan.web_ui(name))
            page.wait_for_selector("text=met_s", timeout=60_000)
            page.wait_for_selector("text=Current value", timeout=60_000)
            deadline = time.monotonic() + 60
            shown = None
            while time.monotonic() < deadline:
                shown = _current_value(page.inner_text("body"))
                if shown is not None:
                    break
                page.wait_for_timeout(500)
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    print(f"\nscreenshot: {shot.resolve()}")
    assert shown is not None, "the page shows no current value"
    flight = float(mission.sitl.fs.telemetry("exec.met_s"))
    # The page shows a live MET: a value the flight has passed, a few seconds old at most.
    assert 0 < shown <= flight + 1e-6
    assert flight - shown < 60


def _current_value(text: str) -> float | None:
    lines = [x.strip() for x in text.splitlines()]
    for i, line in enumerate(lines[:-1]):
        if line == "Current value":
            word = lines[i + 1].split()[0].replace(",", "") if lines[i + 1] else ""
            try:
                return float(word)
            except ValueError:
                return None
    return None


def test_yamcs_receives_a_file_by_cfdp(mission: Mission) -> None:
    # FILE_SEND through Yamcs: the flight sends the file class 2 (ACKs, NAKs, Finished go
    # up as TCs through COP-1 and SDLS) and Yamcs' CfdpService stores it in its bucket.
    seed = random.SystemRandom().randrange(2**32)
    print(f"\nseed {seed}")
    body = random.Random(seed).randbytes(3000)
    root = mission.sitl.fs.component("cfdp").root
    (root / "logs").mkdir(parents=True, exist_ok=True)
    (root / "logs" / "yamcs-cfdp.log").write_bytes(body)
    conn = mission.processor.create_command_connection()
    send = conn.issue(
        "/GNOMON/cfdp/FILE_SEND",
        args={"path": "logs/yamcs-cfdp.log", "dest": "yamcs-cfdp.log", "acknowledged": True},
    )
    send.await_complete(timeout=60)
    assert send.is_success(), send.acknowledgments
    storage = mission.client.get_storage_client()
    deadline = time.monotonic() + 120
    names: list[str] = []
    while time.monotonic() < deadline:
        names = [o.name for o in storage.list_objects(CFDP_BUCKET).objects]
        if "yamcs-cfdp.log" in names:
            break
        time.sleep(1)
    assert "yamcs-cfdp.log" in names, names
    assert storage.download_object(CFDP_BUCKET, "yamcs-cfdp.log") == body
    # Yamcs' record: class 2, completed once its Finished (a TC through COP-1 and SDLS)
    # was acknowledged by the flight, which counts the file delivered.
    tr = _cfdp_transfer(mission, "yamcs-cfdp.log")
    print(f"CFDP transfer: {tr}")
    entity = mission.sitl.fs.component("cfdp").entity
    why = (entity.stats, entity.last_error)
    assert (tr["state"], tr["direction"], tr["reliable"]) == ("COMPLETED", "DOWNLOAD", True), why
    assert int(tr["sizeTransferred"]) == len(body)
    assert mission.sitl.fs.telemetry("cfdp.files_sent") >= 1
    assert any(e.name == "cfdp.FILE_DELIVERED" for e in mission.sitl.fs.recent_events)


def _cfdp_transfer(mission: Mission, name: str) -> dict[str, Any]:
    """Yamcs' CFDP transfer of object ``name`` (waits up to 60 s for it to end)."""
    import urllib.request

    url = f"http://{mission.plan.url}/api/filetransfer/gnomon/cfdp0/transfers"
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(url, timeout=10) as resp:
            transfers = json.load(resp).get("transfers", [])
        tr: dict[str, Any] = next(t for t in transfers if t.get("objectName") == name)
        if tr["state"] in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
            return tr
        time.sleep(0.5)


def test_cop1_comes_back_after_the_spacecraft_restarts(mission: Mission) -> None:
    # A new flight software boots with FARM-1 V(R) = 0 while Yamcs' V(S) moved on.
    mission.land()
    mission.fly()
    assert ensure_cop1(mission.client, timeout_s=60, restarted=True) == "ACTIVE"
    ping = mission.processor.create_command_connection().issue("/GNOMON/cmd/PING")
    ping.await_complete(timeout=60)
    assert ping.is_success(), ping.acknowledgments
    assert mission.sitl.fs.telemetry("cmd.tc_accepted") == 1  # the new boot ran it
