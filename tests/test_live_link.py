"""The live link holds up (issue #14, section 4): `gnomon sitl --realtime` with ground
clients on UDP.

Measured before: the ground said hello with an empty datagram on every 50 ms receive
timeout, the SITL stopped reading at the first empty datagram, so CLTUs queued behind
hellos (PING time climbed from 0.16 s to 1.03 s in 3 minutes; 1 command in a 4-minute
pass); a second ground client left the console unable to complete any command. The soak
test at the end is slow (10 minutes; `GNOMON_SOAK_S` shortens it for a local try).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_ground_harness import CFG, FlightThread, flight_dictionary, free_udp_port

from fsw.link import open_link
from fsw.link.udp import KEEPALIVE_S, UdpTransport
from ground import CommandHandle, GroundSession, Stage, StationError
from ground.station import GroundStation
from hil.sim.sitl import Sitl
from hil.sim.sitl_config import make_config

pytestmark = pytest.mark.timeout(180)


def _drain(sock: socket.socket) -> list[bytes]:
    out = []
    while select.select([sock], [], [], 0.0)[0]:
        out.append(sock.recv(65536))
    return out


def test_udp_skips_empty_datagrams_and_counts_them() -> None:
    with open_link("udp://127.0.0.1:0", role="spacecraft") as sc:
        assert isinstance(sc, UdpTransport)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ground:
            ground.connect(sc.local_address)
            for _ in range(50):
                ground.send(b"")  # hellos from a ground that says hello too often
            ground.send(b"\xeb\x90 a CLTU")
            for _ in range(50):
                ground.send(b"")
            time.sleep(0.2)  # let loopback deliver them all
            # the CLTU behind 50 empty datagrams is the next thing read, at once
            assert sc.recv(0.0) == b"\xeb\x90 a CLTU"
            assert sc.recv(0.0) == b""  # and then the socket is empty: the rest were hellos
            assert sc.stats["rx_empty"] == 100 and sc.stats["rx_chunks"] == 1
            sc.send(b"downlink")  # the empty datagrams still taught it where the ground is
            assert ground.recv(100) == b"downlink"


def test_udp_ground_keepalive_at_most_once_a_second() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spacecraft:
        spacecraft.bind(("127.0.0.1", 0))
        host, port = spacecraft.getsockname()
        with open_link(f"udp://{host}:{port}", role="ground") as gnd:
            t0 = time.monotonic()
            calls = 0
            while time.monotonic() - t0 < 1.3 * KEEPALIVE_S:
                assert gnd.recv(0.05) == b""  # a receive loop with nothing coming down
                calls += 1
            elapsed = time.monotonic() - t0
            hellos = _drain(spacecraft)
    assert all(h == b"" for h in hellos)
    # one at open, then one per second of silence: not one per receive timeout
    assert 2 <= len(hellos) <= 2 + elapsed / KEEPALIVE_S, (len(hellos), calls, elapsed)
    assert calls > len(hellos)


def _bench_sitl(**channel: Any) -> Sitl:
    cfg = make_config("sitl-short", orbits=0.05, seed=1, seu_acceleration=0.0)
    ch = dataclasses.replace(
        cfg.channel,
        **(
            {
                "passes_only": False,
                "uplink_drop": 0.0,
                "downlink_drop": 0.0,
                "uplink_ber": 0.0,
                "downlink_ber": 0.0,
                "downlink_bps": 1_000_000.0,
            }
            | channel
        ),
    )
    return Sitl("sitl-short", dataclasses.replace(cfg, channel=ch), with_ground=False)


def test_realtime_sitl_reads_all_the_uplink_each_step() -> None:
    """CLTUs behind hundreds of empty datagrams still reach the flight in the first step."""
    sitl = _bench_sitl()
    sc = open_link("udp://127.0.0.1:0", role="spacecraft")
    assert isinstance(sc, UdpTransport)
    session = GroundSession(json.loads(json.dumps(flight_dictionary())), CFG)
    handle, cltus = session.send("PING", 0.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as ground:
        ground.connect(sc.local_address)
        for _ in range(300):
            ground.send(b"")
        for cltu in cltus:
            ground.send(cltu)
        time.sleep(0.2)
        try:
            sitl.serve(sc, duration_s=1.5)
        finally:
            sc.close()
        data = b"".join(_drain(ground))
    session.receive(data, 1.5)
    assert handle.reached(Stage.COMPLETED), handle.summary()
    assert sc.stats["rx_empty"] == 300 and sitl.uplink_backlog_steps == 0


# ------------------------------------------------------------------ two ground clients
@pytest.fixture
def udp_flight() -> Iterator[str]:
    url = f"udp://127.0.0.1:{free_udp_port()}"
    with FlightThread(url):
        yield url


def test_two_ground_processes_on_one_link_are_both_served(udp_flight: str, tmp_path: Path) -> None:
    """The console and a `gnomon ground send` on one link: the first owns it, the second
    goes through it, and each completes its commands (before: the console completed none)."""
    d = flight_dictionary()
    state = tmp_path / "state.json"
    with GroundStation(
        d, CFG, udp_flight, arsn_file=state, share_dir=tmp_path, program="console"
    ) as console:
        assert not console.is_guest
        with GroundStation(
            d, CFG, udp_flight, arsn_file=state, share_dir=tmp_path, program="send"
        ) as send:
            assert send.is_guest and "console" in send.stats["link_owner"]
            handles = []
            for i in range(6):  # interleaved, as a person and a script would
                station = console if i % 2 == 0 else send
                handles.append((station, station.send("PING")))
            for station, h in handles:
                assert station.await_stage(h, "completed", 10.0), h.summary()
            ids = [h.request_id for _, h in handles]
            assert len(set(ids)) == 6  # one numbering for both
            # the owner archives and tracks what it sent for its guest too
            relayed = {h.request_id for h in console.commands if h.request_id in set(ids)}
            assert relayed == set(ids)
            assert send.wait_for(lambda: send.telemetry.get("exec.met_s") is not None, 5.0)
            assert console.stats["relay_tcs_relayed"] == 3
            assert console.stats["fop_alerts"] == 0  # nobody restarted anybody's COP-1
        late = send.commands.recent(1)[0]
        assert late.reached(Stage.COMPLETED)
        # the guest left; a new one joins and leaves again while the owner carries on
        with GroundStation(d, CFG, udp_flight, share_dir=tmp_path) as again:
            assert again.is_guest
            h = again.send("PING")
            assert again.await_stage(h, "completed", 10.0)
        h = console.send("PING")
        assert console.await_stage(h, "completed", 10.0)
        guest = GroundStation(d, CFG, udp_flight, share_dir=tmp_path).start()
    # the owner has gone: the guest says so instead of timing out in silence
    assert guest.wait_for(lambda: guest.stats["receive_error"] is not None, 5.0)
    with pytest.raises(StationError, match="has ended; restart this one"):
        guest.send("PING")
    guest.close()
    # and the next ground process owns the link
    with GroundStation(d, CFG, udp_flight, arsn_file=state, share_dir=tmp_path) as next_owner:
        assert not next_owner.is_guest
        h = next_owner.send("PING")
        assert next_owner.await_stage(h, "completed", 10.0)


def test_ground_send_while_a_console_is_open(udp_flight: str, tmp_path: Path) -> None:
    """The command line as a user types it, in its own process, while a console flies."""
    d = flight_dictionary()
    dict_file = tmp_path / "dictionary.json"
    dict_file.write_text(json.dumps(d), encoding="utf-8")
    env = {**os.environ, "GNOMON_STATE_DIR": str(tmp_path)}
    with GroundStation(
        d,
        CFG,
        udp_flight,
        arsn_file=tmp_path / f"sdls-arsn-scid{CFG.spacecraft_id}.json",
        share_dir=tmp_path,
    ) as console:
        mine = console.send("PING")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "ground.cli",
                "send",
                "PING",
                "--link",
                udp_flight,
                "--dict",
                str(dict_file),
                "--json",
                "--timeout",
                "20",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["status"] == "completed" and doc["request_id"] != mine.request_id
        assert console.await_stage(mine, "completed", 10.0)
        after = console.send("PING")
        assert console.await_stage(after, "completed", 10.0)


# ------------------------------------------------------------------ the documented modes
def _free_port() -> int:
    return free_udp_port()


class _RealtimeSitl:
    """`gnomon sitl --realtime ...` in its own process, as docs/sitl.md runs it."""

    def __init__(self, *args: str, duration_s: float, log: Path) -> None:
        self.url = f"udp://127.0.0.1:{_free_port()}"
        self._log = log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gnomon.cli",
                "sitl",
                *args,
                "--realtime",
                "--link",
                self.url,
                "--duration",
                str(duration_s),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

    def result(self, timeout_s: float) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=timeout_s)
        return dict(json.loads(out.strip().splitlines()[-1]))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


def _ping(station: GroundStation, timeout_s: float) -> tuple[CommandHandle, float | None]:
    h = station.send("PING")
    ok = station.await_stage(h, "completed", timeout_s)
    t = h.time_of("completed")
    return h, (t - h.t_sent_s) if ok and t is not None else None


@pytest.mark.slow
@pytest.mark.timeout(600)  # 150 s of realtime flight, plus start-up on a loaded machine
def test_pass_only_mode_works_as_documented(tmp_path: Path) -> None:
    """docs/sitl.md: `gnomon sitl --realtime --link ...` keeps the link up only in passes
    (the default scenario's first one starts 23 s in and lasts almost 6 minutes), with the
    scenario's bit errors, losses and 9,600 bit/s downlink; a PING takes a few seconds.
    Before the fix, 1 command reached the flight in a 4-minute pass."""
    # The UHF scenario: 9,600 bit/s as documented (the default's S-band pass would have a
    # realtime SITL move 4.3 Mbit/s of products through Python).
    sitl = _RealtimeSitl(
        "leo550-sso-6u-uhf", "--seu-acceleration", "0", duration_s=150.0, log=tmp_path / "sitl.log"
    )
    try:
        d = flight_dictionary()
        with GroundStation(d, CFG, sitl.url, arsn_file=tmp_path / "s.json") as st:
            _, t_early = _ping(st, 12.0)
            assert t_early is None  # before AOS nothing gets through
            assert st.wait_for(lambda: st.in_contact, 120.0), "no downlink in the pass"
            times = [_ping(st, 30.0)[1] for _ in range(8)]
        res = sitl.result(120.0)
    finally:
        sitl.close()
    print(f"\npass-only mode: PING times in the pass {times}; channel {res['channel']}")
    assert all(t is not None for t in times), times
    assert max(t for t in times if t is not None) < 15.0
    assert res["transport"]["rx_empty"] <= 5 + 150 / KEEPALIVE_S  # keep-alives, not a flood
    assert res["uplink_backlog_steps"] == 0


def _percentile99(values: list[float]) -> float:
    return float(np.percentile(np.array(values), 99))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_soak_ten_minutes_realtime_with_a_console_and_a_second_client(tmp_path: Path) -> None:
    """README setup (`--always-in-view --clean-link`), a console-like owner and a second
    client (a guest station, plus a `gnomon ground send` process every 2 minutes), a PING
    every 3 s from each station. No command lost, and PING time stays flat: the rise of a
    straight line fitted to every PING time over the soak stays within 20 % of the first
    minute's median or 0.1 s, whichever is larger, and the last minute's p99 within 20 %
    of the first minute's or 0.25 s above it. (Before the fix the p99 climbed by ~0.3 s a
    minute. With 20 PINGs a minute a p99 is the slowest one, which a loaded machine moves
    by 0.1 s; the fitted trend is what a growing queue shows and noise does not.)"""
    soak_s = float(os.environ.get("GNOMON_SOAK_S", "600"))
    sitl = _RealtimeSitl(
        "--always-in-view",
        "--clean-link",
        "--seu-acceleration",
        "0",
        duration_s=soak_s + 60.0,
        log=tmp_path / "sitl.log",
    )
    d = flight_dictionary()
    dict_file = tmp_path / "dictionary.json"
    dict_file.write_text(json.dumps(d), encoding="utf-8")
    state = tmp_path / f"sdls-arsn-scid{CFG.spacecraft_id}.json"
    records: list[tuple[str, float, float | None, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def pinger(name: str, station: GroundStation, offset_s: float, t0: float) -> None:
        stop.wait(offset_s)
        while not stop.is_set():
            t_send = time.monotonic() - t0
            h, dt = _ping(station, 30.0)
            with lock:
                records.append((name, t_send, dt, h.status.value))
            stop.wait(max(0.0, 3.0 - (dt or 0.0)))

    cli: list[dict[str, Any]] = []
    try:
        with GroundStation(
            d, CFG, sitl.url, arsn_file=state, share_dir=tmp_path, program="console"
        ) as console:
            assert console.wait_for(lambda: console.in_contact, 60.0), "no downlink"
            with GroundStation(d, CFG, sitl.url, share_dir=tmp_path, program="second") as second:
                assert second.is_guest
                t0 = time.monotonic()
                threads = [
                    threading.Thread(target=pinger, args=("console", console, 0.0, t0)),
                    threading.Thread(target=pinger, args=("second", second, 1.5, t0)),
                ]
                for th in threads:
                    th.start()
                try:
                    while time.monotonic() - t0 < soak_s:
                        time.sleep(min(120.0, max(0.0, soak_s - (time.monotonic() - t0))))
                        if time.monotonic() - t0 >= soak_s:
                            break
                        proc = subprocess.run(
                            [
                                sys.executable,
                                "-m",
                                "ground.cli",
                                "send",
                                "PING",
                                "--link",
                                sitl.url,
                                "--dict",
                                str(dict_file),
                                "--json",
                                "--timeout",
                                "30",
                            ],
                            env={**os.environ, "GNOMON_STATE_DIR": str(tmp_path)},
                            capture_output=True,
                            text=True,
                            timeout=120,
                            check=False,
                        )
                        cli.append({"rc": proc.returncode, **json.loads(proc.stdout or "{}")})
                finally:
                    stop.set()
                    for th in threads:
                        th.join(timeout=60)
                stats = console.stats
        res = sitl.result(120.0)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            sitl.close()
    lost = [r for r in records if r[2] is None]
    figures: dict[str, Any] = {"soak_s": soak_s, "pings": len(records), "lost": len(lost)}
    for who in ("console", "second"):
        first = [r[2] for r in records if r[0] == who and r[1] < 60.0 and r[2] is not None]
        last = [r[2] for r in records if r[0] == who and r[1] >= soak_s - 60.0 and r[2] is not None]
        every = [(r[1], r[2]) for r in records if r[0] == who and r[2] is not None]
        slope = float(np.polyfit([t for t, _ in every], [v for _, v in every], 1)[0])
        figures[who] = {
            "first_minute_median_s": round(float(np.median(first)), 3),
            "trend_rise_over_soak_s": round(slope * soak_s, 3),
            "first_minute_p99_s": round(_percentile99(first), 3),
            "last_minute_p99_s": round(_percentile99(last), 3),
            "first_minute_n": len(first),
            "last_minute_n": len(last),
        }
    figures["cli_sends"] = [(c["rc"], c.get("status")) for c in cli]
    figures["owner_relay"] = {k: v for k, v in stats.items() if k.startswith("relay_")}
    figures["sitl_transport"] = res["transport"]
    print("\nsoak figures: " + json.dumps(figures))
    assert not lost, lost[:5]
    assert all(c["rc"] == 0 and c.get("status") == "completed" for c in cli), cli
    for who in ("console", "second"):
        f = figures[who]
        assert f["first_minute_n"] >= 10 and f["last_minute_n"] >= 10, f
        rise = max(0.2 * f["first_minute_median_s"], 0.1)
        assert f["trend_rise_over_soak_s"] <= rise, (who, f, rise)
        allowed = max(1.2 * f["first_minute_p99_s"], f["first_minute_p99_s"] + 0.25)
        assert f["last_minute_p99_s"] <= allowed, (who, f, allowed)
    assert res["uplink_backlog_steps"] == 0
