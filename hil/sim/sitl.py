"""SITL: the whole satellite, simulated, faster than real time.

A run builds the simulated world of a scenario, the real flight software on a
:class:`~fsw.core.clock.SimClock` (the topology a board runs; only the HAL back-end is
the simulator's, :mod:`hil.sim.sim_hal`), and a simulated ground station: the ground
segment's :class:`ground.GroundSession` talking to the flight's
:class:`~fsw.comms.radio.RadioHost` through the real CCSDS link layers and the lossy,
pass-gated :class:`~hil.sim.channel.RfChannel`. Every step (1 s):

1. the flight software runs the step (``fs.step``): EPS telemetry, the power scheduler,
   real int8 inference on the frames queued, the scrubber, housekeeping, events;
2. the world runs the same step with the payload power the flight drew and the radio
   on during passes: battery and array, camera frames (handed to the simulated camera),
   radiation upsets, which flip real bits in the models' weight arenas;
3. during a pass, the ground script sends its commands (CLTUs through the channel into
   ``RadioHost.uplink``; COP-1 retransmits what the channel lost), and the downlink
   carries as many TM packets as the channel's bit rate allows; everything the ground
   decodes goes into its SQLite archive.

>>> result = run_sitl("sitl-short", orbits=0.1, seed=1)       # doctest: +SKIP
>>> result.summary["commands"]["completed"] == result.summary["commands"]["sent"]  # doctest: +SKIP
True

Determinism: the same scenario, seed and settings give the same ``summary.json`` except
the wall-clock fields in :data:`WALL_CLOCK_FIELDS`. Inference energy and timing use the
board profile's latency per frame (tiles per frame x per-tile latency, per model and power
mode: the payload's ``profile`` latency model; ``summary["inference"]`` names the board
and its source); the real models run on every frame's tiles and their measured latency on
this host is reported separately.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fsw.ai.payload import Payload, with_golden_copies
from fsw.ai.runtime import Runtime, ScrubReport
from fsw.ai.scrubber import Scrubber
from fsw.app import build_flight
from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
from fsw.comms.radio import RadioHost
from fsw.core.clock import SimClock
from fsw.core.dictionary import build_dictionary
from fsw.core.flight import FlightSoftware
from fsw.core.registry import Priority
from fsw.link import LinkError
from fsw.link.base import Transport
from fsw.power.astro import orbit_period_s, parse_tle
from fsw.power.predictor import PassWindow
from fsw.storage.files import FileStore
from fsw.storage.stores import PacketStores
from ground.files import GroundFiles
from hil.sim.channel import RfChannel
from hil.sim.ground_script import GroundScript
from hil.sim.results import SAMPLE_S, SeuRecord, SitlResult, Trace
from hil.sim.scenario import Scenario, load_scenario
from hil.sim.sim_hal import SimDevices, shipped_models, sim_hal_with_devices
from hil.sim.sitl_config import SitlConfig, make_config
from hil.sim.world import World

log = logging.getLogger(__name__)

DEFAULT_SCENARIO = "leo550-sso-6u"
#: Uplink chunks (UDP datagrams: CLTUs) :meth:`Sitl.serve` takes in one step at most.
MAX_UPLINK_PER_STEP = 1000
#: Idle TM frames sent in one step at most when there is nothing to send (they carry the
#: CLCW; a UHF link fits about one frame a second anyway, an S-band one hundreds).
MAX_IDLE_CADUS_PER_STEP = 2
#: Summary fields that depend on the machine (everything else is deterministic).
WALL_CLOCK_FIELDS: tuple[str, ...] = ("wall_seconds", "sim_wall_ratio", "inference_latency_ms")
ProgressFn = Callable[[float, float], None]


@dataclass(slots=True)
class _Flip:
    t_s: float
    model: int
    byte: int
    bit: int
    block: int
    detected_s: float | None = None
    repaired_s: float | None = None


# ---------------------------------------------------------------------------- the run
class Sitl:
    """One SITL mission: world, flight software, channel and ground, stepped together.

    Build it, then call :meth:`run` (batch, with the automated ground script) or
    :meth:`serve` (real time, the radio on a transport for the ground console).
    """

    def __init__(
        self,
        scenario: str | Path | Scenario = DEFAULT_SCENARIO,
        config: SitlConfig | None = None,
        *,
        out_dir: Path | None = None,
        link_config: LinkConfig | None = None,
        with_ground: bool = True,
        contacts: Sequence[PassWindow] | None = None,
    ) -> None:
        if isinstance(scenario, Scenario):
            sc = scenario
            cfg = config or SitlConfig()
        else:
            sc = load_scenario(scenario)
            cfg = config or make_config(scenario)
        period = orbit_period_s(parse_tle(sc.tle_line1, sc.tle_line2))
        self.period_s = period
        self.duration_s = cfg.orbits * period
        rad = dataclasses.replace(
            sc.radiation, seu_per_bit_day=sc.radiation.seu_per_bit_day * cfg.seu_acceleration
        )
        sc = dataclasses.replace(
            sc,
            start_tai=sc.start_tai + cfg.start_offset_s,
            duration_s=self.duration_s + cfg.drain_s,
            radiation=rad,
        )
        self.scenario = sc
        self.config = cfg
        self.out_dir = out_dir
        self.world = World(sc, cfg.seed, duration_s=self.duration_s + cfg.drain_s + 60.0)
        self.clock = SimClock(self.world.start_tai)
        self.link_config = link_config or LinkConfig.load(TEST_KEY_FILE)
        golden = None if out_dir is None else out_dir / "board" / "golden"
        models = None if golden is None else with_golden_copies(shipped_models(), golden)
        hal, self.devices = sim_hal_with_devices(self.world, self.clock, models)
        self.fs: FlightSoftware = build_flight(
            self.clock,
            hal=hal,
            link_config=self.link_config,
            stores_dir=None if out_dir is None else out_dir / "board" / "stores",
            files_dir=None if out_dir is None else out_dir / "board" / "files",
        )
        self.radio = RadioHost(self.fs)
        stores = self.fs.component("stores")
        assert isinstance(stores, PacketStores)
        self.stores = stores
        files = self.fs.component("files")
        assert isinstance(files, FileStore)
        self.files = files
        stores.set_contact(False)  # the first AOS starts the default playback sequence
        payload = self.fs.component("payload")
        scrubber = self.fs.component("scrubber")
        assert isinstance(payload, Payload) and isinstance(scrubber, Scrubber)
        self.payload = payload
        self.scrubber = scrubber
        self.models: tuple[Runtime, ...] = scrubber.models
        self._golden = [rt.arena.copy() for rt in self.models]
        for rt in self.models:
            self.world.subscribe(rt.name, rt.arena_bytes * 8)
        self._memory = {rt.name: i for i, rt in enumerate(self.models)}
        scrubber.listeners.append(self._on_scrub)
        self.cadu_len = 4 + self.link_config.tm_frame_len
        # contacts: the passes this spacecraft is given (a constellation's station
        # scheduler grants them as it flies, hil.sim.constellation); default: every pass
        self.contacts = self.world.passes if contacts is None else tuple(contacts)
        windows = [(p.aos_tai, p.los_tai) for p in self.contacts]
        self.channel = RfChannel(cfg.channel, windows, cfg.seed, self.cadu_len)
        self.ground: GroundScript | None = None
        if with_ground:
            archive_path = None if out_dir is None else out_dir / "archive.sqlite"
            # The ground gets the dictionary as plain JSON, as it would from a file.
            dictionary = json.loads(json.dumps(build_dictionary(self.fs)))
            self.ground = GroundScript(
                dictionary,
                self.link_config,
                self.contacts,
                cfg.script,
                archive_path=archive_path,
            )
            # CFDP: files the flight delivers land in OUT/files/ (without an OUT, in a
            # temporary folder: the ground answers the same either way, so a run repeats)
            if out_dir is None:
                self._ground_tmp = tempfile.TemporaryDirectory(prefix="gnomon-sitl-files-")
                files_dir = Path(self._ground_tmp.name)
            else:
                files_dir = out_dir / "files"
            self.ground.session.files = GroundFiles(files_dir, archive_path)
        self._flips: list[_Flip] = []
        self._pending: dict[tuple[int, int], list[_Flip]] = {}
        self.trace = Trace()
        self._floor_soc = sc.policy.floor_soc
        self._below_floor = False
        self.floor_violations = 0
        self.min_soc = self.max_soc = sc.battery.soc0
        self._next_sample = 0.0
        self._pass_stats: list[dict[str, Any]] = []
        self._in_pass_idx: int | None = None
        self._ch_at_aos: dict[str, int] = {}
        self._delivery_at_aos: dict[str, float] = {}
        self._wall_s = 0.0
        #: :meth:`serve` steps that left uplink waiting (more than MAX_UPLINK_PER_STEP).
        self.uplink_backlog_steps = 0

    # ------------------------------------------------------------------ helpers
    @property
    def t_s(self) -> float:
        """Seconds since the run started."""
        return self.clock.now_tai() - self.world.start_tai

    def _on_scrub(self, model: int, rep: ScrubReport) -> None:
        if not rep.corrupted_blocks:
            return
        now = self.t_s
        lost = set(rep.unrepairable_blocks)
        for block in rep.corrupted_blocks:
            for flip in self._pending.pop((model, block), []):
                flip.detected_s = now
                if block not in lost:
                    flip.repaired_s = now

    def _inject(self, upsets: Any, inject: bool) -> None:
        if not inject:
            return  # the drain after the last orbit: no new upsets
        for u in upsets:
            i = self._memory[u.memory]
            rt = self.models[i]
            byte, bit = u.bit >> 3, u.bit & 7
            rt.arena[byte] ^= np.uint8(1 << bit)
            f = _Flip(u.t_tai - self.world.start_tai, i, byte, bit, byte // rt.block_size)
            self._flips.append(f)
            self._pending.setdefault((i, f.block), []).append(f)

    def _sample(self, payload_w: float) -> None:
        e = self.world.eps
        tlm = self.fs.telemetry
        self.trace.add(
            self.t_s,
            soc=e.soc,
            solar_w=e.solar_w,
            load_w=e.load_w,
            payload_w=payload_w,
            queue=int(tlm("payload.queue_len")),
            dl_queued=len(self.fs.registry.downlink),
            inferences=int(tlm("payload.small_runs")) + int(tlm("payload.large_runs")),
            processed=int(tlm("payload.frames_processed")),
        )

    def _step_world(self, dt: float, inject: bool) -> None:
        """Flight then world over the next ``dt`` seconds."""
        t0 = self.clock.now_tai()
        self.fs.step(dt)
        t1 = self.clock.now_tai()
        dt_real = t1 - t0
        if dt_real <= 0.0:
            return
        dev: SimDevices = self.devices
        payload_w = dev.payload_power.energy_j(t0, t1) / dt_real
        dev.payload_power.forget_before(t0)
        radio_on = self.channel.visible(t0) and self.world.in_pass(t0) is not None
        ws = self.world.step(
            dt_real,
            payload_power_w=payload_w,
            radio_on=radio_on,
            safe_mode=self.fs.mode.name == "SAFE",
        )
        dev.camera.push(ws.frames)
        self._inject(ws.upsets, inject)
        soc = ws.eps.soc
        self.min_soc = min(self.min_soc, soc)
        self.max_soc = max(self.max_soc, soc)
        below = soc < self._floor_soc - 1e-9
        if below and not self._below_floor:
            self.floor_violations += 1
        self._below_floor = below
        if self.t_s + 1e-9 >= self._next_sample:
            self._sample(payload_w)
            self._next_sample += SAMPLE_S

    def _downlink(self, dt: float) -> bytes:
        """TM the channel lets through this step (bytes as the ground receives them)."""
        now = self.clock.now_tai()
        ch = self.channel
        ch.refill(dt, now)
        if not ch.visible(now):
            return b""
        out = bytearray()
        idle0 = self.radio.stats["idle_cadus"]
        while ch.budget_bytes > 0.0:
            n = max(1, int(ch.budget_bytes // 110))
            data = self.radio.downlink(max_packets=n, idle=True, max_bytes=int(ch.budget_bytes))
            if not data:
                break
            out += ch.downlink(data, now)
            if self.radio.stats["idle_cadus"] - idle0 >= MAX_IDLE_CADUS_PER_STEP:
                break  # nothing to send: a fast link is not filled with idle frames
        return bytes(out)

    def _track_pass(self) -> None:
        now = self.clock.now_tai()
        ps = self.world.in_pass(now) if self.channel.visible(now) else None
        visible = self.channel.visible(now)
        if visible != self.stores.in_contact:  # AOS/LOS as the radio sees it
            self.stores.set_contact(visible)
        if ps is not None and self._in_pass_idx is None:
            self._in_pass_idx = len(self._pass_stats)
            self._ch_at_aos = dict(self.channel.stats)
            self._delivery_at_aos = self._delivery()
            self._pass_stats.append(
                {
                    "station": ps.station,
                    "aos_s": self.t_s,
                    "max_elevation_deg": round(ps.window.max_elevation_deg, 1),
                }
            )
        elif ps is None and self._in_pass_idx is not None:
            self._close_pass()

    def _close_pass(self, *, cut: bool = False) -> None:
        """LOS (or the end of the run, ``cut``) of the pass in progress: its link counts."""
        assert self._in_pass_idx is not None
        rec = self._pass_stats[self._in_pass_idx]
        rec["los_s"] = self.t_s
        if cut:
            rec["cut_by_run_end"] = True
        rec.update({k: v - self._ch_at_aos.get(k, 0) for k, v in self.channel.stats.items()})
        rec.update(
            {k: round(v - self._delivery_at_aos.get(k, 0), 4) for k, v in self._delivery().items()}
        )
        rec["store_fill_pct"] = {
            st.spec.name: round(100.0 * st.store.fill, 3) for st in self.stores.stores.values()
        }
        self._in_pass_idx = None

    def _delivery(self) -> dict[str, float]:
        """What has gone down so far: store playback, files (bytes and value)."""
        f = self.files.summary()
        return {
            "playback_bytes": self.radio.stats["playback_bytes"],
            "file_bytes_delivered": f["bytes_delivered"],
            "files_delivered": f["delivered"],
            "value_delivered": f["value_delivered"],
        }

    # ------------------------------------------------------------------ batch run
    def run(self, progress: ProgressFn | None = None) -> SitlResult:
        """Fly the configured orbits (then the drain) with the automated ground script."""
        total = self.duration_s + self.config.drain_s
        self.advance(total, progress)
        if progress is not None:
            progress(total, total)
        return self.finish()

    def advance(self, until_s: float, progress: ProgressFn | None = None) -> bool:
        """Fly on to ``until_s`` seconds after the start (at most the orbits and the
        drain); True when the run is over (the drain ends early once every upset is
        accounted for). :meth:`run` is one call of it; a constellation calls it once a
        lock-step window."""
        cfg = self.config
        wall0 = time.perf_counter()
        end = self.duration_s
        total = end + cfg.drain_s
        until = min(until_s, total)
        ground = self.ground
        end_tai = self.world.start_tai + end
        last_report = -1.0
        done = self.t_s >= total - 1e-6
        while self.t_s < until - 1e-6:
            dt = min(cfg.step_s, until - self.t_s)
            inject = self.t_s < end
            self._step_world(dt, inject)
            now = self.clock.now_tai()
            self._track_pass()
            if ground is not None:
                for cltu in ground.tick(now, allow_new=inject, end_tai=end_tai):
                    rx = self.channel.uplink(cltu, now)
                    if rx:
                        self.radio.uplink(rx)
                rx = self._downlink(dt)
                if rx:
                    ground.receive(rx, now)
            if not inject and not self._pending:
                done = True
                break  # drain done: every upset accounted for
            if progress is not None and self.t_s - last_report >= 60.0:
                progress(self.t_s, total)
                last_report = self.t_s
        self._wall_s += time.perf_counter() - wall0
        return done or self.t_s >= total - 1e-6

    def finish(self) -> SitlResult:
        """End the run: close the pass in progress and the ground; the result."""
        if self._in_pass_idx is not None:
            self._close_pass(cut=True)
        if self.ground is not None:
            self.ground.close()
        return self._result(self._wall_s)

    # ------------------------------------------------------------------ real time
    def serve(
        self,
        transport: Transport,
        duration_s: float | None = None,
        *,
        stop: Callable[[], bool] | None = None,
        period_s: float = 0.1,
        sleep: Callable[[float], None] = time.sleep,
    ) -> float:
        """Fly paced by the wall clock with the radio on ``transport`` (no ground script).

        World and flight step together as wall time passes (at most 1 s per step); after
        each step the transport is read until it is empty, and the uplink bytes go
        through the channel into the radio; the radio's CADUs
        go through the channel (at its bit rate, an idle frame when there is no TM) to
        the transport. Ends after ``duration_s``, ``stop()`` or the configured orbits;
        returns the simulated seconds flown.
        """
        start = time.monotonic()
        end = self.duration_s
        flown = 0.0
        while not (stop is not None and stop()) and self.t_s < end - 1e-6:
            wall = time.monotonic() - start
            if duration_s is not None and wall >= duration_s:
                break
            behind = wall - flown
            if behind < period_s:
                sleep(period_s - behind)
                continue
            dt = min(behind, 1.0, end - self.t_s)
            before = self.t_s
            self._step_world(dt, inject=True)
            flown += dt
            if self.t_s <= before:
                continue
            now = self.clock.now_tai()
            self._track_pass()
            self._drain_uplink(transport, now)
            down = self._downlink(self.t_s - before)
            if down:
                try:
                    transport.send(down)
                except (LinkError, OSError) as exc:
                    log.warning("downlink send failed: %s", exc)
        return self.t_s

    def _drain_uplink(self, transport: Transport, now: float) -> None:
        """Everything the ground sent since the last step, through the channel, to the radio.

        Reads until the transport is empty (empty keep-alive datagrams are no data; the
        transport skips them), at most :data:`MAX_UPLINK_PER_STEP` chunks a step so a
        flood cannot stall the world: the rest waits for the next step (counted).
        """
        for _ in range(MAX_UPLINK_PER_STEP):
            try:
                data = transport.recv(0.0)
            except (LinkError, OSError) as exc:
                log.warning("uplink receive failed: %s", exc)
                return
            if not data:
                return
            rx = self.channel.uplink(data, now)
            if rx:
                self.radio.uplink(rx)
        self.uplink_backlog_steps += 1

    # ------------------------------------------------------------------ summary
    def _result(self, wall_s: float) -> SitlResult:
        w = self.world
        seus = [
            SeuRecord(
                f.t_s, self.models[f.model].name, f.byte, f.bit, f.block, f.detected_s, f.repaired_s
            )
            for f in self._flips
        ]
        eclipses = [(e.start_tai - w.start_tai, e.end_tai - w.start_tai) for e in w.eclipses]
        self.trace.finish()
        return SitlResult(
            self._summary(wall_s),
            self.trace,
            eclipses,
            list(self._pass_stats),
            seus,
            self.scenario,
            self.config,
        )

    def _summary(self, wall_s: float) -> dict[str, Any]:
        """``summary.json``: what a user checks after a run (see docs/sitl.md)."""
        ground_sum = self.ground.summary() if self.ground is not None else {}
        sim_s = self.t_s
        files = self.files.summary()
        orbits = sim_s / self.period_s if self.period_s > 0 else 0.0
        return {
            "scenario": self.scenario.name,
            "seed": self.config.seed,
            # The mission's headline: the value of the kept frames on the ground per orbit
            # flown (value = the scheduler's value x keep confidence, files delivered whole).
            "value_delivered_per_orbit": round(files["value_delivered"] / orbits, 4)
            if orbits > 0
            else 0.0,
            "sim_seconds": round(sim_s, 3),
            "wall_seconds": round(wall_s, 3),
            "sim_wall_ratio": round(sim_s / wall_s, 1) if wall_s > 0 else None,
            "orbits": self.config.orbits,
            "orbit_period_s": round(self.period_s, 3),
            "frames": self._frames_summary(),
            "inference_energy_j": round(self.payload.energy_j, 3),
            "inference_latency_ms": self._latency_summary(),
            "inference": self._inference_summary(),
            "battery": {
                "min_soc": round(self.min_soc, 5),
                "max_soc": round(self.max_soc, 5),
                "floor_soc": self._floor_soc,
                "floor_violations": self.floor_violations,
                "brownout_j": round(self.world.eps_model.ledger.unserved_j, 3),
            },
            "seu": self._seu_summary(),
            "commands": ground_sum.get("commands", {}),
            "link": self._link_summary(ground_sum),
            "storage": self.stores.summary(),
            "files": files,
            "passes": len(self._pass_stats),
            "ground": {
                k: v
                for k, v in ground_sum.items()
                if k not in ("commands", "frames_rejected", "packets_received", "retransmissions")
            },
            "mode": self.fs.mode.name,
        }

    def _frames_summary(self) -> dict[str, Any]:
        def tlm(name: str) -> int:
            return int(self.fs.telemetry(f"payload.{name}"))

        return {
            "seen": tlm("frames_seen"),
            "processed": tlm("frames_processed"),
            "kept": tlm("frames_kept"),
            "discarded": tlm("frames_discarded"),
            "dropped": tlm("frames_dropped"),
            "queued_at_end": tlm("queue_len"),
            "small_runs": tlm("small_runs"),
            "large_runs": tlm("large_runs"),
            "escalations": tlm("escalations"),
            "accuracy": self._accuracy(),
        }

    def _inference_summary(self) -> dict[str, Any]:
        """Where the payload's time and energy come from, and what they came to: the
        frame (tiles), the board profile and its source, per-mode latency and power, and
        energy per inference = mean latency x mean power (docs/boards.md)."""
        p = self.scenario.payload
        n = int(self.fs.telemetry("payload.small_runs")) + int(
            self.fs.telemetry("payload.large_runs")
        )
        busy, energy = self.payload.busy_s, self.payload.energy_j
        prof = p.profile
        board = p.board
        modes = {
            m.name: {
                "power_w": m.power_w,
                "power_source": board.mode(m.name).power_source if board is not None else None,
                "frame_latency_ms": {
                    v: round(prof.latency_s(v, m.name) * 1e3, 4) for v in ("small", "large")
                },
                "frame_energy_j": {
                    v: round(prof.latency_s(v, m.name) * m.power_w, 6) for v in ("small", "large")
                },
            }
            for m in p.modes
        }
        return {
            "tiles_per_frame": p.tiles_per_frame,
            "tile_px": p.tile_px,
            "board": board.name if board is not None else None,
            "board_status": board.status if board is not None else "given",
            "board_source": board.source if board is not None else p.latency_source,
            "modes": modes,
            "inferences": n,
            "energy_j": round(energy, 6),
            "busy_s": round(busy, 6),
            "latency_per_inference_ms": round(1e3 * busy / n, 4) if n else None,
            "mean_power_w": round(energy / busy, 4) if busy > 0 else None,
            "energy_per_inference_j": round(energy / n, 6) if n else None,
        }

    def _latency_summary(self) -> dict[str, Any]:
        lat = np.array(self.payload.latency_s) * 1e3
        return {
            "count": int(lat.size),
            "mean": round(float(lat.mean()), 3) if lat.size else None,
            "p95": round(float(np.percentile(lat, 95)), 3) if lat.size else None,
            "max": round(float(lat.max()), 3) if lat.size else None,
        }

    def _seu_summary(self) -> dict[str, Any]:
        flips = self._flips
        detected = sum(f.detected_s is not None for f in flips)
        return {
            "acceleration": self.config.seu_acceleration,
            "injected": len(flips),
            "detected": detected,
            "repaired": sum(f.repaired_s is not None for f in flips),
            "pending": len(flips) - detected,
            "blocks_repaired": int(self.fs.telemetry("scrubber.repaired")),
            "unrepairable": int(self.fs.telemetry("scrubber.unrepairable")),
        }

    def _link_summary(self, ground_sum: dict[str, Any]) -> dict[str, Any]:
        counters = self.radio.link.counters
        ch = self.channel.stats
        tm_packets_sent = int(counters.get("tm_packets", 0))
        received = int(ground_sum.get("packets_received", 0))
        # TM frames the ground rejected (FECF): its own count, else what the channel hit.
        g_rej = ground_sum.get("frames_rejected")
        tm_rejected = int(g_rej) if g_rej is not None else ch["cadus_corrupted"]
        tc_rejected = sum(
            int(counters.get(k, 0))
            for k in ("frames_rejected_fecf", "frames_rejected_format", "cltus_incomplete")
        )
        channel = self.config.channel
        return {
            "frames_up": ch["cltus_sent"],
            "frames_down": ch["cadus_sent"],
            "bits_corrected": int(counters.get("bits_corrected", 0)),
            "frames_rejected": tm_rejected + tc_rejected,
            "packets_lost": max(0, tm_packets_sent - received),
            "cltus_dropped": ch["cltus_dropped"],
            "cltus_corrupted": ch["cltus_corrupted"],
            "cadus_dropped": ch["cadus_dropped"],
            "cadus_corrupted": ch["cadus_corrupted"],
            "tc_frames_accepted": int(counters.get("frames_accepted", 0)),
            "tm_packets_sent": tm_packets_sent,
            "tm_packets_received": received,
            "tm_queue_dropped": int(self.fs.registry.downlink.total_dropped),
            "tm_dropped_on_board": {
                p.name.lower(): int(self.fs.registry.downlink.dropped[p]) for p in Priority
            },
            "tm_queued_at_end": len(self.fs.registry.downlink),
            "retransmissions": int(ground_sum.get("retransmissions", 0)),
            "downlink_bps": channel.downlink_bps,
            "uplink_ber": channel.uplink_ber,
            "downlink_ber": channel.downlink_ber,
            "uplink_drop": channel.uplink_drop,
            "downlink_drop": channel.downlink_drop,
        }

    def _accuracy(self) -> dict[str, Any]:
        """How the flight's keep/discard calls compare with the simulator's truth."""
        truth = self.devices.camera.truth
        if self.ground is None:
            return {}
        results = self.ground.results
        right = sum(1 for fid, keep in results.items() if fid in truth and truth[fid].keep == keep)
        n = sum(1 for fid in results if fid in truth)
        return {
            "results_on_ground": n,
            "correct": right,
            "accuracy": round(right / n, 4) if n else None,
        }


def run_sitl(
    scenario: str | Path = DEFAULT_SCENARIO,
    *,
    orbits: float = 3.0,
    seed: int = 1,
    out_dir: Path | None = None,
    progress: ProgressFn | None = None,
    torch_threads: int | None = 1,
    link_config: LinkConfig | None = None,
    **overrides: Any,
) -> SitlResult:
    """Run a SITL mission; with ``out_dir`` write summary.json and archive.sqlite there.

    The report (``report.html`` and its plots) is drawn from the result by
    :func:`hil.sim.report.write_report`, as ``gnomon sitl`` does.

    ``torch_threads`` sets torch's CPU threads for the run (1: the int8 kernels on small
    batches are fastest single-threaded on a shared CPU; None leaves torch's setting).
    ``overrides`` are ``[sitl]`` keys (e.g. ``seu_acceleration=0``); ``link_config``
    replaces the test key file (``gnomon sitl --key-file``).
    """
    if torch_threads is not None:
        import torch

        torch.set_num_threads(torch_threads)
    cfg = make_config(scenario, orbits=orbits, seed=seed, **overrides)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        stale = out_dir / "archive.sqlite"
        if stale.exists():
            stale.unlink()
        # A run flies a new board: the previous run's on-board stores and files, and the
        # files its ground received, would otherwise be played back and delivered again.
        for owned in ("board", "files"):
            shutil.rmtree(out_dir / owned, ignore_errors=True)
    sitl = Sitl(scenario, cfg, out_dir=out_dir, link_config=link_config)
    result = sitl.run(progress)
    if out_dir is not None:
        (out_dir / "summary.json").write_text(
            json.dumps(result.summary, indent=2) + "\n", encoding="utf-8"
        )
    return result


__all__ = ["DEFAULT_SCENARIO", "WALL_CLOCK_FIELDS", "Sitl", "run_sitl"]
