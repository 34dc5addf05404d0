"""The HIL bench: the world and the ground station, on the PC end of the serial cable.

The flight board runs ``gnomon fsw run --link serial://...?baud=921600 --sim-bridge``.
The bench (:class:`Bench`) opens the other end of the cable and shares it with the board
through the sim-bridge mux (:mod:`fsw.hal.simbridge`):

* the **world** (:class:`hil.sim.world.World`) runs in real time or at a chosen speed-up:
  every step the bench sends the board its time (:class:`~fsw.hal.simbridge.TimeSync`), an
  EPS sample and the camera frames taken; the board reports the payload power mode it
  switched to, which the world's EPS integrates (as in SITL);
* the **ground station** (:class:`ground.GroundSession`, driven by the SITL's
  :class:`~hil.sim.ground_script.GroundScript` in :meth:`Bench.run`) sends CLTUs and
  receives ASM + TM frames on the radio channel, through the SITL's RF channel model
  (passes, losses, bit errors), and archives everything;
* **timing**: command round-trip latency (SENT to COMPLETED, wall clock), bytes/s each
  way against the line rate, the board's own inference latency (from its hello).

The bench's other parts: :mod:`hil.bench.cable` (the serial cable's pty stand-in),
:mod:`hil.bench.selftest` (``gnomon hil selftest``), :mod:`hil.bench.errors`
(:class:`~hil.bench.errors.HilError`), :mod:`hil.bench.cli` (``gnomon hil``).

>>> percentiles_ms([0.1, 0.2, 0.3])
{'p50': 200.0, 'p99': 298.0, 'max': 300.0, 'n': 3}
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.core.clock import SimClock
from fsw.hal.interfaces import EpsReading
from fsw.hal.simbridge import (
    BoardHello,
    BridgePort,
    BulkRequest,
    EpsSample,
    FrameMsg,
    Message,
    PlatformMsg,
    PowerModeMsg,
    TimeSync,
)
from fsw.link import LinkError, open_link
from fsw.power.astro import orbit_period_s, parse_tle
from ground import GroundSession
from ground.tracker import CommandHandle, Stage, StageRecord
from hil.bench.cable import line_rate_bytes_s
from hil.bench.errors import HilError
from hil.sim.channel import ChannelConfig, RfChannel
from hil.sim.errors import ScenarioError, WorldError
from hil.sim.ground_script import GroundScript
from hil.sim.results import SAMPLE_S, SitlResult, Trace
from hil.sim.scenario import Scenario, load_scenario
from hil.sim.sim_hal import FrameTruth, SimPayloadPower, platform_of
from hil.sim.sitl_config import MAX_ORBITS, SitlConfig, make_config

log = logging.getLogger(__name__)


def percentiles_ms(samples_s: list[float]) -> dict[str, float | int | None]:
    """``{"p50", "p99", "max", "n"}`` in milliseconds of round-trip samples in seconds."""
    if not samples_s:
        return {"p50": None, "p99": None, "max": None, "n": 0}
    a = np.array(samples_s) * 1e3
    return {
        "p50": round(float(np.percentile(a, 50)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "max": round(float(a.max()), 3),
        "n": int(a.size),
    }


def _scenario_and_config(
    scenario: str | Path | Scenario, orbits: float, seed: int
) -> tuple[Scenario, SitlConfig | None]:
    """The scenario, and its ``[sitl]`` settings when it comes from a file."""
    try:
        if isinstance(scenario, Scenario):
            return scenario, None
        return load_scenario(scenario), make_config(scenario, orbits=orbits, seed=seed)
    except (ScenarioError, WorldError) as exc:
        raise HilError(str(exc)) from exc


# ---------------------------------------------------------------------------- the bench
class Bench:
    """The bench end of the cable: world, bridge, ground session, statistics.

    ``port`` is the cable's URL (``serial:///dev/ttyUSB0?baud=921600``). ``speed`` is
    simulated seconds per wall second. ``script`` makes :meth:`run` fly the SITL's
    automated pass plan through the RF ``channel``, the ground on the world's simulated
    time; without it the caller drives :attr:`session` (the self-test does), the ground
    on the wall clock.
    """

    def __init__(
        self,
        port: str,
        scenario: str | Path | Scenario = "sitl-short",
        *,
        orbits: float = 0.25,
        speed: float = 1.0,
        seed: int = 1,
        out_dir: Path | None = None,
        script: bool = True,
        channel: ChannelConfig | None = None,
        step_s: float = 1.0,
        link_config: LinkConfig | None = None,
    ) -> None:
        if not 0.0 < speed <= 1000.0:
            raise HilError(f"speed {speed} must be in (0, 1000]")
        if not 0.0 < orbits <= MAX_ORBITS:
            raise HilError(f"orbits {orbits} must be in (0, {MAX_ORBITS:g}]")
        sc, cfg = _scenario_and_config(scenario, orbits, seed)
        from hil.sim.world import World

        self.speed = float(speed)
        self.step_s = float(step_s)
        self.period_s = orbit_period_s(parse_tle(sc.tle_line1, sc.tle_line2))
        self.duration_s = orbits * self.period_s
        if cfg is not None and cfg.start_offset_s:
            sc = dataclasses.replace(sc, start_tai=sc.start_tai + cfg.start_offset_s)
        self.scenario = sc
        self.orbits = orbits
        self.seed = seed
        self.world = World(sc, seed, duration_s=self.duration_s + 120.0)
        self.sim_clock = SimClock(self.world.start_tai)
        self.payload_power = SimPayloadPower(
            self.sim_clock, {m.name: m.power_w for m in sc.payload.modes}
        )
        self.session_id = (os.getpid() << 8 ^ int(time.monotonic() * 1000)) & 0xFFFFFFFF
        self.link_config = link_config or LinkConfig.load(TEST_KEY_FILE)
        self.port_url = port
        try:
            transport = open_link(port, role="ground")
        except LinkError as exc:
            raise HilError(str(exc)) from exc
        self.transport = transport
        self.rates: dict[str, float] = {}
        self.port = BridgePort(transport, on_message=self._on_message, on_bulk=self._on_bulk)
        self.hello: dict[str, Any] | None = None
        self.hellos = 0
        self.truth: dict[int, FrameTruth] = {}
        self.frames_sent = 0
        self.min_soc = self.max_soc = sc.battery.soc0
        self.floor_violations = 0
        self._below = False
        self._inbox: list[Message] = []
        self._inbox_lock = threading.Lock()
        self._bulk = {"bytes": 0, "first": 0.0, "last": 0.0, "first_chunk": 0}
        self.out_dir = out_dir
        self.script: GroundScript | None = None
        self._archive_closed = False
        self.channel: RfChannel | None = None
        self._open_ground(script, cfg, channel)
        self._sent_wall: dict[int, float] = {}
        self.rtt_s: list[float] = []
        self.session.on_stage(self._on_stage)
        self._t_start_wall: float | None = None
        self._sim_flown = 0.0
        self.radio_bytes = {"up": 0, "down": 0}
        self.trace = Trace()
        self._next_sample = 0.0
        self._passes: list[dict[str, Any]] = []
        self._pass_open: tuple[int, dict[str, int]] | None = None

    def _open_ground(
        self, script: bool, cfg: SitlConfig | None, channel: ChannelConfig | None
    ) -> None:
        """The ground session: the pass plan through the RF channel on simulated time
        (``script``), or a bare session on the wall clock."""
        from fsw.app import build_flight, close_storage
        from fsw.core.dictionary import build_dictionary
        from fsw.hal.board import BRIDGE_ID, Bridge

        # The board's topology: the default one plus the sim-bridge's telemetry.
        board = build_flight(components={BRIDGE_ID: Bridge(None)})
        dictionary = json.loads(json.dumps(build_dictionary(board)))
        close_storage(board)  # built for its dictionary only
        self.dictionary = dictionary
        if not script:
            self.session: GroundSession = GroundSession(
                dictionary, self.link_config, now_s=time.monotonic()
            )
            self.ground_now: Callable[[], float] = time.monotonic
            return
        # The pass plan runs on simulated time; COP-1's timer must cover a real round
        # trip, so it is scaled by the speed-up (2 s of wall time).
        lc = dataclasses.replace(
            self.link_config, fop_t1_s=self.link_config.fop_t1_s * max(1.0, self.speed)
        )
        archive = None
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            archive = self.out_dir / "archive.sqlite"
            archive.unlink(missing_ok=True)  # a fresh archive for a fresh run
        self.script = GroundScript(
            dictionary,
            lc,
            self.world.passes,
            cfg.script if cfg is not None else None,
            archive_path=archive,
        )
        self.session = self.script.session
        windows = [(p.aos_tai, p.los_tai) for p in self.world.passes]
        ch = channel or (cfg.channel if cfg is not None else ChannelConfig())
        self.channel = RfChannel(ch, windows, self.seed, 4 + self.link_config.tm_frame_len)
        self.ground_now = lambda: self.world.t_tai

    # ------------------------------------------------------------------ bridge in
    def _on_message(self, msg: Message) -> None:
        with self._inbox_lock:
            self._inbox.append(msg)

    def _on_bulk(self, n: int) -> None:
        now = time.monotonic()
        b = self._bulk
        if b["bytes"] == 0:
            b["first"], b["first_chunk"] = now, n
        b["bytes"] += n
        b["last"] = now

    def _on_stage(self, handle: CommandHandle, rec: StageRecord) -> None:
        if handle.release_tai is not None or handle.parent is not None:
            return  # time-tagged: its completion waits for the release time
        if rec.stage is Stage.SENT:
            self._sent_wall[handle.id] = time.monotonic()
        elif rec.stage is Stage.COMPLETED and handle.id in self._sent_wall:
            self.rtt_s.append(time.monotonic() - self._sent_wall.pop(handle.id))

    def _handle_inbox(self) -> None:
        with self._inbox_lock:
            msgs, self._inbox = self._inbox, []
        for msg in msgs:
            if isinstance(msg, BoardHello):
                self.hello = msg.info
                self.hellos += 1
                log.info("board says hello: %s", msg.info.get("host"))
                self.send_setup()
            elif isinstance(msg, PowerModeMsg):
                self.sim_clock.set_tai(max(self.sim_clock.now_tai(), self.world.t_tai))
                try:
                    self.payload_power.set_mode(msg.mode)
                except WorldError as exc:
                    log.warning("board asked for %s", exc)

    def send_setup(self) -> None:
        """Send the board the platform description and the time (answer to its hello)."""
        self.port.send_message(PlatformMsg(platform_of(self.scenario)))
        self.port.send_message(TimeSync(self.world.t_tai, self.speed, self.session_id))

    # ------------------------------------------------------------------ stepping
    def wait_for_board(self, timeout_s: float | None = None) -> bool:
        """Wait for the board's hello (answering it); False after ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while self.hello is None:
            self._handle_inbox()
            if self.hello is not None:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    @property
    def t_s(self) -> float:
        """Simulated seconds since the start."""
        return self.world.t_tai - self.world.start_tai

    def pump(self, wait_s: float = 0.01) -> None:
        """One turn of the bench loop: bridge messages, due world steps, ground I/O."""
        now_wall = time.monotonic()
        if self._t_start_wall is None:
            self._t_start_wall = now_wall
        self._handle_inbox()
        due = (now_wall - self._t_start_wall) * self.speed
        stepped = False
        while self._sim_flown + self.step_s <= due + 1e-9 and self.t_s < self.duration_s:
            self._step_world(self.step_s)
            self._sim_flown += self.step_s
            stepped = True
        if stepped:
            self.port.send_message(TimeSync(self.world.t_tai, self.speed, self.session_id))
        self._ground_io(wait_s)

    def _step_world(self, dt: float) -> None:
        t0 = self.world.t_tai
        self.sim_clock.set_tai(max(self.sim_clock.now_tai(), t0))
        t1 = t0 + dt
        payload_w = self.payload_power.energy_j(t0, t1) / dt
        self.payload_power.forget_before(t0)
        radio_on = self.world.in_pass(t0) is not None
        ws = self.world.step(dt, payload_power_w=payload_w, radio_on=radio_on)
        e = ws.eps
        self.port.send_message(
            EpsSample(
                EpsReading(True, e.t_tai, e.soc, e.battery_wh, e.solar_w, e.load_w, e.bus_voltage_v)
            )
        )
        for f in ws.frames:
            tile = f.tile()
            self.truth[f.frame_id] = FrameTruth(tile.keep, tile.cloud_fraction, tile.surface)
            self.port.send_message(
                FrameMsg(f.frame_id, f.t_tai, f.lat_deg, f.lon_deg, f.priority, tile.pixels)
            )
            self.frames_sent += 1
        self.min_soc = min(self.min_soc, e.soc)
        self.max_soc = max(self.max_soc, e.soc)
        self._track_pass()
        if self.t_s + 1e-9 >= self._next_sample:
            self._sample(payload_w)
            self._next_sample += SAMPLE_S
        below = e.soc < self.scenario.policy.floor_soc - 1e-9
        if below and not self._below:
            self.floor_violations += 1
        self._below = below

    def _sample(self, payload_w: float) -> None:
        e = self.world.eps
        # What the board does, as the ground last heard it (0 before the first report).
        self.trace.add(
            self.t_s,
            soc=e.soc,
            solar_w=e.solar_w,
            load_w=e.load_w,
            payload_w=payload_w,
            queue=int(self.tlm("payload.queue_len") or 0),
            dl_queued=0,  # the board's TM queue is not in its telemetry
            inferences=int(self.tlm("payload.small_runs") or 0)
            + int(self.tlm("payload.large_runs") or 0),
            processed=int(self.tlm("payload.frames_processed") or 0),
        )

    def _track_pass(self) -> None:
        ps = self.world.in_pass(self.world.t_tai)
        stats = dict(self.channel.stats) if self.channel is not None else {}
        if ps is not None and self._pass_open is None:
            self._pass_open = (len(self._passes), stats)
            self._passes.append(
                {
                    "station": ps.station,
                    "aos_s": self.t_s,
                    "max_elevation_deg": round(ps.window.max_elevation_deg, 1),
                }
            )
        elif ps is None and self._pass_open is not None:
            i, at_aos = self._pass_open
            self._passes[i]["los_s"] = self.t_s
            self._passes[i].update({k: v - at_aos.get(k, 0) for k, v in stats.items()})
            self._pass_open = None

    def result(self, summary: dict[str, Any]) -> SitlResult:
        """The run as a :class:`~hil.sim.results.SitlResult`, for the SITL's report writer."""
        w = self.world
        eclipses = [(e.start_tai - w.start_tai, e.end_tai - w.start_tai) for e in w.eclipses]
        cfg = SitlConfig(orbits=self.orbits, seed=self.seed, seu_acceleration=0.0)
        self.trace.finish()
        return SitlResult(summary, self.trace, eclipses, list(self._passes), [], self.scenario, cfg)

    def _ground_io(self, wait_s: float) -> None:
        now = self.ground_now()
        down = self.port.radio.recv(wait_s)
        if down:
            self.radio_bytes["down"] += len(down)
            if self.channel is not None:
                down = self.channel.downlink(down, now)
            if down:
                if self.script is not None:
                    self.script.receive(down, now)
                else:
                    self.session.receive(down, now)
        if self.script is not None:
            cltus = self.script.tick(now, end_tai=self.world.start_tai + self.duration_s)
        else:
            cltus = self.session.poll(now)
        self.transmit(cltus)

    def transmit(self, cltus: list[bytes]) -> None:
        """Send CLTUs up the radio channel (through the RF channel model if there is one)."""
        now = self.ground_now()
        for cltu in cltus:
            data = self.channel.uplink(cltu, now) if self.channel is not None else cltu
            if data:
                self.port.radio.send(data)
                self.radio_bytes["up"] += len(data)

    def command(self, name: str, **args: Any) -> CommandHandle:
        """Send a command now (self-test use; :meth:`run` uses the pass plan)."""
        handle, cltus = self.session.send(name, self.ground_now(), **args)
        self.transmit(list(cltus))
        return handle

    # ------------------------------------------------------------------ measurements
    def measure_throughput(self, nbytes: int, timeout_s: float = 30.0) -> dict[str, Any]:
        """Ask the board for ``nbytes`` of filler and time their arrival (a saturating
        transfer board to bench). ``efficiency`` = payload bytes/s over the line rate."""
        self._bulk.update(bytes=0, first=0.0, last=0.0, first_chunk=0)
        self.port.send_message(BulkRequest(nbytes))
        deadline = time.monotonic() + timeout_s
        while self._bulk["bytes"] < nbytes and time.monotonic() < deadline:
            self.pump(0.02)
        b = self._bulk
        got = int(b["bytes"])
        span = float(b["last"] - b["first"])
        # The first chunk's arrival starts the clock, so its bytes are not counted.
        rate = (got - b["first_chunk"]) / span if span > 0 else 0.0
        baud = getattr(self.transport, "baud", None)
        out: dict[str, Any] = {
            "requested": nbytes,
            "received": got,
            "seconds": round(span, 3),
            "bytes_per_s": round(rate, 1),
        }
        if baud:
            out["line_rate_bytes_s"] = line_rate_bytes_s(baud)
            out["efficiency"] = round(rate / line_rate_bytes_s(baud), 4)
        return out

    def link_stats(self, wall_s: float) -> dict[str, Any]:
        """Bytes each way, bytes/s against the line rate, mux and cable counters."""
        baud = getattr(self.transport, "baud", None)
        tx = self.transport.stats["tx_bytes"]
        rx = self.transport.stats["rx_bytes"]
        out: dict[str, Any] = {
            "baud": baud,
            "cable_tx_bytes": tx,
            "cable_rx_bytes": rx,
            "radio_up_bytes": self.radio_bytes["up"],
            "radio_down_bytes": self.radio_bytes["down"],
            "tx_bytes_per_s": round(tx / wall_s, 1) if wall_s > 0 else None,
            "rx_bytes_per_s": round(rx / wall_s, 1) if wall_s > 0 else None,
            "cable": dict(self.transport.stats),
            "mux": {**self.port.stats, **self.port.demux.stats},
        }
        if baud and wall_s > 0:
            lr = line_rate_bytes_s(baud)
            out["tx_line_fraction"] = round(tx / wall_s / lr, 4)
            out["rx_line_fraction"] = round(rx / wall_s / lr, 4)
        return out

    # ------------------------------------------------------------------ the mission
    def run(
        self,
        *,
        board_timeout_s: float | None = 60.0,
        progress: Callable[[float, float], None] | None = None,
    ) -> dict[str, Any]:
        """Fly the orbits in (sped-up) real time with the pass plan; the summary."""
        if not self.wait_for_board(board_timeout_s):
            raise HilError(
                f"no board answered on {self.port_url} in {board_timeout_s} s: "
                "is `gnomon fsw run --sim-bridge` running on it, same baud?"
            )
        wall0 = time.monotonic()
        last = -1.0
        while self.t_s < self.duration_s - 1e-6:
            self.pump(0.01)
            if progress is not None and self.t_s - last >= 10.0:
                progress(self.t_s, self.duration_s)
                last = self.t_s
        for _ in range(20):  # the last TM in flight
            self.pump(0.05)
        wall = time.monotonic() - wall0
        summary = self.summary(wall)
        self._close_archive()
        if self.out_dir is not None:
            from hil.sim.report import write_report

            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "summary.json").write_text(
                json.dumps(summary, indent=2) + "\n", encoding="utf-8"
            )
            write_report(self.result(summary), self.out_dir)
        return summary

    def tlm(self, name: str) -> Any:
        """The latest value of telemetry channel ``name`` received (None: none yet)."""
        v = self.session.telemetry.get(name)
        return None if v is None else v.value

    def summary(self, wall_s: float) -> dict[str, Any]:
        """The SITL summary's fields the bench can know, plus link and timing."""
        script = self.script.summary() if self.script is not None else {}
        results = self.script.results if self.script is not None else {}
        right = sum(
            1 for fid, keep in results.items() if fid in self.truth and self.truth[fid].keep == keep
        )
        n = sum(1 for fid in results if fid in self.truth)
        frames = {
            k: self.tlm(f"payload.frames_{k}")
            for k in ("seen", "processed", "kept", "discarded", "dropped")
        }
        frames.update(
            sent_to_board=self.frames_sent,
            small_runs=self.tlm("payload.small_runs"),
            large_runs=self.tlm("payload.large_runs"),
            accuracy={
                "results_on_ground": n,
                "correct": right,
                "accuracy": round(right / n, 4) if n else None,
            },
        )
        ch = self.channel.stats if self.channel is not None else {}
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "mode_of_run": "hil",
            "sim_seconds": round(self.t_s, 3),
            "wall_seconds": round(wall_s, 3),
            "sim_wall_ratio": round(self.t_s / wall_s, 2) if wall_s > 0 else None,
            "speed": self.speed,
            "orbits": self.orbits,
            "orbit_period_s": round(self.period_s, 3),
            "frames": frames,
            "battery": {
                "min_soc": round(self.min_soc, 5),
                "max_soc": round(self.max_soc, 5),
                "floor_soc": self.scenario.policy.floor_soc,
                "floor_violations": self.floor_violations,
            },
            "seu": {
                "acceleration": 0.0,
                "injected": 0,
                "detected": 0,
                "repaired": 0,
                "pending": 0,
                "note": "no upsets are injected on a HIL bench",
            },
            "commands": script.get("commands", {}),
            "passes": len(self._passes),
            "link": {
                **{k: v for k, v in script.items() if k != "commands"},
                "channel": dict(ch),
                **self.link_stats(wall_s),
            },
            "timing": {
                "rtt_ms": percentiles_ms(self.rtt_s),
                "board_inference_ms": (self.hello or {}).get("inference_ms"),
                "board_last_latency_ms": self.tlm("payload.last_latency_ms"),
                # Cycles the board's executive skipped: nonzero means the speed-up was
                # more than the board could keep.
                "board_overruns": self.tlm("exec.overruns"),
                "board_payload_mode_w": self.tlm("bridge.payload_mode_w"),
                "board_mode_switches": self.tlm("bridge.mode_switches"),
                "board_cable_crc_errors": self.tlm("bridge.crc_errors"),
            },
            "board": {k: v for k, v in (self.hello or {}).items() if k != "inference_ms"},
            "ground": {k: v for k, v in self.session.stats.items() if k != "last_error"},
            "mode": self.tlm("mode.mode"),
        }

    def _close_archive(self) -> None:
        if self.script is not None and not self._archive_closed:
            self.script.close()
            self._archive_closed = True

    def close(self) -> None:
        """Close the cable (and the archive)."""
        self._close_archive()
        self.port.close()


__all__ = ["Bench", "percentiles_ms"]
