"""The ``payload`` component: camera frames, the job queue and the int8 model cascade.

Once a second it takes the camera's new frames into a bounded queue (each a
:class:`~fsw.power.scheduler.Job` whose deadline comes from the ``power`` component),
runs the work the power scheduler ordered and publishes results. Every scheduling tick
(the platform's ``tick_s``) it asks :meth:`fsw.power.component.Power.decide` what to
run, with which model and in which power mode; the orders run back to back with the
payload computer switched to that mode through the HAL, then off.

The cascade: the small model looks at every frame first; a frame it is unsure about
(confidence below ``confidence_threshold``) goes back to the queue for the large model,
if the scheduler finds the energy for it. A disabled model (a weight block the scrubber
could not repair) is replaced: the large model does first looks, or the small model's
answer stands (``fallbacks`` counts both). Each final answer is a ``RESULT`` report.

Timing. With ``latency_model="profile"`` (SITL) a job lasts the platform's configured
latency for its model and mode, so energy and timing are deterministic; with
``"measured"`` (a board) it lasts what the inference took. The measured latency is
always published (``last_latency_ms``) and kept in :attr:`Payload.latency_s`.
Energy per job = latency x the mode's power.

>>> from fsw.app import build_flight
>>> fs = build_flight()                    # no HAL: no camera, no models
>>> _ = fs.step(2.0)
>>> fs.telemetry("payload.frames_seen"), fs.telemetry("payload.models_loaded")
(0, 0)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fsw.ai.errors import AiError
from fsw.core import Arg, Channel, Component, Event, Mode, Param, Report, Severity, command
from fsw.hal.interfaces import (
    Camera,
    CameraFrame,
    LatencyModel,
    ModelFiles,
    NoCamera,
    NoPayloadPower,
    PayloadPower,
)
from fsw.power.scheduler import Job, RunOrder, Variant

if TYPE_CHECKING:
    from fsw.ai.runtime import Prediction, Runtime
    from fsw.power.component import Power

log = logging.getLogger(__name__)

VARIANTS: tuple[str, ...] = ("SMALL", "LARGE")


@dataclass(slots=True, frozen=True)
class LoadedModels:
    """What :func:`load_models` found: the runtimes and why a model is missing."""

    small: Runtime | None = None
    large: Runtime | None = None
    errors: Mapping[Variant, str] = field(default_factory=dict)

    @property
    def loaded(self) -> tuple[Runtime, ...]:
        return tuple(rt for rt in (self.small, self.large) if rt is not None)


def load_models(files: ModelFiles | None) -> LoadedModels:
    """Load and verify the payload's models; a file that fails its checks is left out.

    >>> m = load_models(ModelFiles(Path("fsw/ai/artifacts/cloudnet-s.gnm"),
    ...                            Path("no/such/cloudnet-l.gnm")))
    >>> m.small.name, m.large, sorted(m.errors)
    ('cloudnet-s', None, ['large'])
    """
    if files is None:
        return LoadedModels()  # no payload models configured (no HAL): nothing to report
    from fsw.ai.runtime import Runtime  # torch: only when there are models to load

    out: dict[Variant, Runtime | None] = {"small": None, "large": None}
    errors: dict[Variant, str] = {}
    sources: dict[Variant, tuple[Path, tuple[Path, ...]]] = {
        "small": (files.small, files.small_golden),
        "large": (files.large, files.large_golden),
    }
    for variant, (path, golden) in sources.items():
        try:
            out[variant] = Runtime.load(path, golden_paths=golden)
        except (AiError, OSError) as exc:
            errors[variant] = f"{path.name}: {exc}"[:80]
            log.error("payload model %s not loaded: %s", path, exc)
    return LoadedModels(out["small"], out["large"], errors)


@dataclass(slots=True)
class _Item:
    """A queued frame: its pixels, its job, and the small model's answer once known."""

    frame: CameraFrame
    job: Job
    small: Prediction | None = None


@dataclass(slots=True)
class _Active:
    """One run order in progress."""

    order: RunOrder
    start_tai: float
    finish_tai: float = 0.0
    started: bool = False
    variant: Variant = "small"
    result: Prediction | None = None
    fallback: bool = False


def scene_prediction(tiles: Sequence[Prediction]) -> Prediction:
    """One answer for a frame from its tiles' answers: the mean probability of "keep"
    decides (keep when >= 0.5), the confidence is that call's probability, the cloud
    fraction the mean.

    >>> from fsw.ai.runtime import Prediction
    >>> p = scene_prediction([Prediction(True, 0.9, 0.2), Prediction(False, 0.7, 0.8)])
    >>> p.keep, round(p.confidence, 3), round(p.cloud_fraction, 3)
    (True, 0.6, 0.5)
    """
    if len(tiles) == 1:
        return tiles[0]
    from fsw.ai.runtime import Prediction

    p_keep = sum(t.confidence if t.keep else 1.0 - t.confidence for t in tiles) / len(tiles)
    keep = p_keep >= 0.5
    cloud = sum(t.cloud_fraction for t in tiles) / len(tiles)
    return Prediction(keep=keep, confidence=p_keep if keep else 1.0 - p_keep, cloud_fraction=cloud)


class Payload(Component):
    """Frame queue, model cascade (small, then large when unsure) and results."""

    NAME = "payload"
    DESCRIPTION = "Camera frames, the inference queue, the small/large model cascade, results."
    TELEMETRY = (
        Channel("models_loaded", "u8", description="models loaded (0, 1 or 2)", id=4),
        Channel("frames_seen", "u32", description="frames received from the camera", id=5),
        Channel("frames_processed", "u32", description="frames with a final result", id=6),
        Channel("frames_kept", "u32", description="results: keep (not too cloudy)", id=7),
        Channel("frames_discarded", "u32", description="results: discard (too cloudy)", id=8),
        Channel(
            "frames_dropped",
            "u32",
            description="frames dropped unprocessed (deadline, queue full, no model)",
            id=9,
        ),
        Channel("queue_len", "u16", description="frames waiting (first look or escalation)", id=10),
        Channel("small_runs", "u32", description="small-model inferences", id=11),
        Channel("large_runs", "u32", description="large-model inferences", id=12),
        Channel("escalations", "u32", description="frames sent on to the large model", id=13),
        Channel(
            "fallbacks", "u32", description="jobs run on the other model (one disabled)", id=14
        ),
        Channel("busy", "bool", description="the payload computer is running a job", id=15),
        Channel("energy_j", "f64", units="J", description="inference energy since boot", id=16),
        Channel(
            "last_latency_ms",
            "f32",
            units="ms",
            description="measured wall time of the last inference",
            id=17,
        ),
    )
    EVENTS = (
        Event(
            "JOBS_DROPPED",
            Severity.LOW,
            "{count} frames dropped: {reason}",
            (Arg("count", "u16"), Arg("reason", "str", max_len=40)),
            id=1,
        ),
        Event(
            "MODEL_FALLBACK",
            Severity.MEDIUM,
            "{model} model unavailable: {detail}",
            (Arg("model", "enum", labels=VARIANTS), Arg("detail", "str", max_len=80)),
            id=2,
        ),
        Event("NO_MODEL", Severity.HIGH, "no model can run: frames are dropped", id=3),
    )
    PARAMETERS = (
        Param("enabled", "bool", default=True, description="process frames (False: idle)", id=1),
        Param(
            "confidence_threshold",
            "f32",
            default=0.8,
            min=0.5,
            max=1.0,
            description="small-model answers below this confidence go to the large model",
            id=2,
        ),
        Param(
            "queue_limit",
            "u16",
            default=256,
            min=1,
            max=4096,
            description="frames held at most; the oldest lowest-priority one makes room",
            id=3,
        ),
    )
    REPORTS = (
        Report(
            "RESULT",
            140,
            1,
            (
                Arg("frame_id", "u32"),
                Arg("captured", "cuc", description="capture time (TAI)"),
                Arg("lat_deg", "f32", units="deg"),
                Arg("lon_deg", "f32", units="deg"),
                Arg("keep", "bool", description="worth downlinking (cloud fraction <= 0.7)"),
                Arg("confidence", "f32", description="probability of the keep/discard call"),
                Arg("cloud_fraction", "f32"),
                Arg("model", "enum", labels=VARIANTS, description="model that gave the answer"),
                Arg("escalated", "bool", description="the small model was unsure"),
                Arg("fallback", "bool", description="answered by the other model (one disabled)"),
            ),
            description="The payload's answer for one frame.",
        ),
    )
    RATE_GROUPS = ("1Hz",)
    HK_INTERVAL_S = 10.0

    def __init__(
        self,
        planner: Power,
        camera: Camera | None = None,
        power_switch: PayloadPower | None = None,
        *,
        small: Runtime | None = None,
        large: Runtime | None = None,
        load_errors: Mapping[Variant, str] | None = None,
        latency_model: LatencyModel = "measured",
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.planner = planner
        self.camera: Camera = camera if camera is not None else NoCamera()
        self.power_switch: PayloadPower = (
            power_switch if power_switch is not None else NoPayloadPower()
        )
        self.models: dict[Variant, Runtime | None] = {"small": small, "large": large}
        self.latency_model: LatencyModel = latency_model
        self.load_errors: dict[Variant, str] = dict(load_errors or {})
        #: Measured wall-clock seconds of every inference (not deterministic).
        self.latency_s: list[float] = []

    # ------------------------------------------------------------------ lifecycle
    def on_init(self) -> None:
        self._queue: dict[int, _Item] = {}
        self._active: deque[_Active] = deque()
        self._next_decision_tai = -1.0
        self._energy_j = 0.0
        self._busy_s = 0.0
        self._unavailable: set[Variant] = set()
        self._no_model = False
        if self.power_switch.mode is not None:
            self.power_switch.set_mode(None)
        self.tlm("models_loaded", sum(rt is not None for rt in self.models.values()))
        for variant, rt in self.models.items():
            if rt is None and variant in self.load_errors:
                self._mark(variant, False, self.load_errors[variant])

    def on_mode(self, mode: Mode) -> None:
        if mode == Mode.SAFE:
            self._abort("SAFE mode")

    def on_param_changed(self, name: str, value: Any) -> None:
        if name == "enabled" and not value and self.is_bound and hasattr(self, "_active"):
            self._abort("payload disabled")

    def _abort(self, why: str) -> None:
        """Stop the work in progress; its frames stay queued (answers not yet published
        are discarded, so those frames are looked at again)."""
        if self._active:
            self.log.info("payload work stopped: %s", why)
        self._active.clear()
        if self.power_switch.mode is not None:
            self.power_switch.set_mode(None)
        self.tlm("busy", False)

    # ------------------------------------------------------------------ the tick
    def on_tick(self, rate_group: str) -> None:
        now = self.clock.now_tai()
        self._ingest()
        self._advance(now)
        if (
            not self._active
            and self.mode == Mode.NOMINAL
            and self.param("enabled")
            and now >= self._next_decision_tai
        ):
            self._decide(now)
            self._advance(now)
        self.tlm("queue_len", min(len(self._queue), 0xFFFF))
        self.tlm("busy", bool(self._active))

    def _ingest(self) -> None:
        frames = self.camera.poll()
        if not frames:
            return
        limit = int(self.param("queue_limit"))
        full = 0
        for f in frames:
            self.tlm_inc("frames_seen")
            if len(self._queue) >= limit:
                victim = self._victim()
                if victim is None or self._queue[victim].job.priority > f.priority:
                    full += 1
                    continue
                del self._queue[victim]
                full += 1
            job = Job(f.frame_id, f.t_tai, self.planner.deadline_tai(f.t_tai), f.priority)
            self._queue[f.frame_id] = _Item(f, job)
        if full:
            self.tlm_inc("frames_dropped", full)
            self.event("JOBS_DROPPED", min(full, 0xFFFF), "queue full")

    def _victim(self) -> int | None:
        """The oldest of the lowest-priority queued frames not being worked on."""
        busy = {a.order.job_id for a in self._active}
        cands = [it for k, it in self._queue.items() if k not in busy]
        if not cands:
            return None
        return min(cands, key=lambda it: (it.job.priority, it.job.captured_tai)).job.job_id

    def _decide(self, now: float) -> None:
        queue = [it.job for it in self._queue.values()]
        if not self._usable("small") and self._usable("large"):
            # First looks will run on the large model: budget them as such.
            self._mark("small", False, self._why("small"))
            queue = [
                j if j.stage == "large" else dataclasses.replace(j, stage="large") for j in queue
            ]
        d = self.planner.decide(now, queue)
        cfg = self.planner.config
        self._next_decision_tai = now + (cfg.tick_s if cfg is not None else 60.0)
        if d is None:
            return
        if d.drop:
            lost = 0
            for job_id in d.drop:
                item = self._queue.pop(job_id, None)
                if item is None:
                    continue
                if item.small is not None:  # no time for the large model: the small answer stands
                    self._publish(item, item.small, "small", escalated=True, fallback=False)
                else:
                    lost += 1
            if lost:
                self.tlm_inc("frames_dropped", lost)
                self.event("JOBS_DROPPED", min(lost, 0xFFFF), "deadline")
        start = now
        for order in d.run:
            if order.job_id in self._queue:
                self._active.append(_Active(order, start))
                start += order.latency_s

    def _advance(self, now: float) -> None:
        while self._active:
            a = self._active[0]
            if not a.started:
                if a.start_tai > now + 1e-9:
                    break
                self._start(a)
            if a.finish_tai > now + 1e-9:
                break
            self._active.popleft()
            self._finish(a)
            if self._active:
                self._active[0].start_tai = max(self._active[0].start_tai, a.finish_tai)
        if not self._active and self.power_switch.mode is not None:
            self.power_switch.set_mode(None)

    # ------------------------------------------------------------------ running a job
    def _model_for(self, wanted: Variant) -> tuple[Variant | None, bool]:
        """(variant to run, fallback?) for an order asking for ``wanted``."""
        other: Variant = "large" if wanted == "small" else "small"
        if self._usable(wanted):
            self._mark(wanted, True, "")
            return wanted, False
        self._mark(wanted, False, self._why(wanted))
        if wanted == "small" and self._usable(other):
            return other, True
        return None, True

    def _why(self, v: Variant) -> str:
        if self.models[v] is None:
            return self.load_errors.get(v, "not loaded")
        return "disabled after an unrepairable weight block"

    def _usable(self, v: Variant) -> bool:
        rt = self.models[v]
        return rt is not None and rt.enabled

    def _mark(self, v: Variant, ok: bool, detail: str) -> None:
        if ok:
            self._unavailable.discard(v)
        elif v not in self._unavailable:
            self._unavailable.add(v)
            self.event("MODEL_FALLBACK", v.upper(), detail)

    def _start(self, a: _Active) -> None:
        a.started = True
        a.finish_tai = a.start_tai
        item = self._queue.get(a.order.job_id)
        if item is None:
            return
        variant, fallback = self._model_for(a.order.variant)
        # A first look by the large model only happens when the small one is unavailable.
        fallback = fallback or (variant == "large" and item.small is None)
        a.fallback = fallback
        if variant is None:
            if a.order.variant == "large" and item.small is not None:
                return  # the small answer stands (published at finish)
            if not self._no_model:
                self._no_model = True
                self.event("NO_MODEL")
            return
        self._no_model = False
        rt = self.models[variant]
        assert rt is not None
        px = item.frame.pixels
        t0 = time.perf_counter()
        try:
            result = scene_prediction(rt.classify(px if px.ndim == 4 else px[None]))
        except AiError as exc:
            self.log.warning("inference on %s failed: %s", variant, exc)
            self.tlm_inc("errors")
            return
        measured = time.perf_counter() - t0
        self.latency_s.append(measured)
        self.tlm("last_latency_ms", measured * 1e3)
        a.variant = variant
        a.result = result
        self.tlm_inc("small_runs" if variant == "small" else "large_runs")
        if fallback:
            self.tlm_inc("fallbacks")
        mode = a.order.mode
        profile = self.latency_model == "profile"
        lat = self.planner.latency_s(variant, mode) if profile else measured
        a.finish_tai = a.start_tai + lat
        self._busy_s += lat
        self._energy_j += lat * self.planner.mode_power_w(mode)
        self.tlm("energy_j", self._energy_j)
        if self.power_switch.mode != mode:
            self.power_switch.set_mode(mode)

    def _finish(self, a: _Active) -> None:
        item = self._queue.get(a.order.job_id)
        if item is None:
            return
        if a.result is None:
            if a.order.variant == "large" and item.small is not None:
                del self._queue[item.job.job_id]
                self._publish(item, item.small, "small", escalated=True, fallback=True)
                self.tlm_inc("fallbacks")
            elif self._no_model:
                del self._queue[item.job.job_id]
                self.tlm_inc("frames_dropped")
            return
        if (
            a.variant == "small"
            and item.small is None
            and a.result.confidence < float(self.param("confidence_threshold"))
            and self._usable("large")
        ):
            item.small = a.result
            item.job = dataclasses.replace(item.job, stage="large")
            self.tlm_inc("escalations")
            return
        del self._queue[item.job.job_id]
        self._publish(
            item, a.result, a.variant, escalated=item.small is not None, fallback=a.fallback
        )

    def _publish(
        self, item: _Item, p: Prediction, variant: Variant, *, escalated: bool, fallback: bool
    ) -> None:
        f = item.frame
        self.send_report(
            "RESULT",
            frame_id=f.frame_id & 0xFFFFFFFF,
            captured=f.t_tai,
            lat_deg=f.lat_deg,
            lon_deg=f.lon_deg,
            keep=p.keep,
            confidence=p.confidence,
            cloud_fraction=p.cloud_fraction,
            model=variant.upper(),
            escalated=escalated,
            fallback=fallback,
        )
        self.tlm_inc("frames_processed")
        self.tlm_inc("frames_kept" if p.keep else "frames_discarded")

    # ------------------------------------------------------------------ inspection
    @property
    def queue(self) -> Sequence[Job]:
        """The jobs waiting, as the scheduler sees them."""
        return [it.job for it in self._queue.values()]

    @property
    def energy_j(self) -> float:
        """Inference energy since boot (J): latency x mode power per job."""
        return self._energy_j

    @property
    def busy_s(self) -> float:
        """Inference time since boot (s) as the latency model counts it (the profile's
        per-frame latency in SITL, the measured one on a board)."""
        return self._busy_s

    # ------------------------------------------------------------------ commands
    @command(description="Drop every queued frame (work in progress finishes).", opcode=1)
    def clear_queue(self) -> None:
        busy = {a.order.job_id for a in self._active}
        dropped = [k for k in self._queue if k not in busy]
        for k in dropped:
            del self._queue[k]
        if dropped:
            self.tlm_inc("frames_dropped", len(dropped))
            self.event("JOBS_DROPPED", min(len(dropped), 0xFFFF), "CLEAR_QUEUE")


__all__ = ["VARIANTS", "LoadedModels", "Payload", "load_models", "scene_prediction"]
