"""Hardware abstraction: what the mission components ask of the spacecraft's hardware.

Three device interfaces (:class:`EpsSensor`, :class:`Camera`, :class:`PayloadPower`) and
one bundle, :class:`Hal`, that :func:`fsw.app.build_flight` takes as ``hal=``. The flight
topology is the same everywhere; only the back-end differs:

* :meth:`Hal.none` (the default): no hardware. Every device honestly reports that it is
  absent: the EPS reading has ``valid=False`` and zeros (never NaN), the camera yields no
  frames, the payload power switch records the requested mode but ``available`` is False,
  and there is no platform description and no model files, so the payload stays idle.
* ``hil.sim.sim_hal.SimHal`` (SITL): devices driven by the simulated world.
* a board back-end reading the bench over the serial sim-bridge (`fsw.hal.board`, `docs/hil.md`).

>>> hal = Hal.none()
>>> r = hal.eps.read()
>>> r.valid, r.soc, r.solar_w
(False, 0.0, 0.0)
>>> hal.camera.poll(), hal.payload_power.available
([], False)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from fsw.power.predictor import GroundStation, ImagingPlan
from fsw.power.scheduler import SchedulerConfig

#: How the payload times inference: ``profile`` uses the platform's configured latency
#: per model and power mode (deterministic: SITL), ``measured`` the wall time each
#: inference took (a board).
LatencyModel = Literal["profile", "measured"]


@dataclass(slots=True, frozen=True)
class EpsReading:
    """One EPS sample. ``valid=False`` means no sensor answered: every number is 0.0.

    ``soc`` is 0..1; powers are averages since the previous sample (W).
    """

    valid: bool
    t_tai: float = 0.0
    soc: float = 0.0
    battery_wh: float = 0.0
    solar_w: float = 0.0
    load_w: float = 0.0
    bus_voltage_v: float = 0.0


#: The reading of an absent EPS (no sensor): invalid, all zeros.
NO_EPS_READING = EpsReading(valid=False)


@dataclass(slots=True, frozen=True, eq=False)
class CameraFrame:
    """One frame from the camera: when, where, its target priority and the pixels.

    ``pixels`` is float32 reflectance in the models' input layout: one tile (bands,
    height, width), or a scene of tiles (tiles, bands, height, width).
    """

    frame_id: int
    t_tai: float
    lat_deg: float
    lon_deg: float
    priority: float
    pixels: np.ndarray


@runtime_checkable
class EpsSensor(Protocol):
    """Battery, array and bus telemetry."""

    def read(self) -> EpsReading:
        """The latest sample (``valid=False`` when the sensor does not answer)."""
        ...


@runtime_checkable
class Camera(Protocol):
    """The imager: frames taken by its own plan since the last poll."""

    @property
    def available(self) -> bool: ...

    def poll(self) -> list[CameraFrame]:
        """Frames captured since the previous call, oldest first."""
        ...


@runtime_checkable
class PayloadPower(Protocol):
    """The payload computer's power switch and power mode (e.g. a Jetson's 7 W / 15 W)."""

    @property
    def available(self) -> bool: ...

    @property
    def mode(self) -> str | None:
        """The power mode in force (``None``: idle/off)."""
        ...

    def set_mode(self, mode: str | None) -> None:
        """Switch to ``mode`` (one of the platform's power mode names) or off (``None``)."""
        ...


class NoEps:
    """No EPS sensor: every reading is :data:`NO_EPS_READING`."""

    def read(self) -> EpsReading:
        return NO_EPS_READING


class NoCamera:
    """No camera: never any frame."""

    @property
    def available(self) -> bool:
        return False

    def poll(self) -> list[CameraFrame]:
        return []


class NoPayloadPower:
    """No payload power switch: the requested mode is remembered, nothing is switched."""

    def __init__(self) -> None:
        self._mode: str | None = None

    @property
    def available(self) -> bool:
        return False

    @property
    def mode(self) -> str | None:
        return self._mode

    def set_mode(self, mode: str | None) -> None:
        self._mode = mode


@dataclass(slots=True, frozen=True)
class ModelFiles:
    """The payload's model artifacts (``.gnm``) on the spacecraft's storage.

    Each file is also its model's first repair source; ``*_golden`` add further copies.
    """

    small: Path
    large: Path
    small_golden: tuple[Path, ...] = ()
    large_golden: tuple[Path, ...] = ()


@dataclass(slots=True, frozen=True)
class Platform:
    """What the flight software is told about its spacecraft and mission.

    ``scheduler`` describes battery, loads, power modes and the measured cascade
    profile; ``stations`` and ``imaging`` feed the onboard orbit predictor; ``tle`` is
    the element set loaded before launch (``None``: wait for ``power.SET_TLE``).
    Results of a frame are due at the first pass at least ``min_deadline_s`` after
    capture (``deadline="next_pass"``), or a fixed number of seconds after it, and never
    later than ``max_deadline_s``. ``bus_peak_w`` is the highest bus load in NOMINAL mode
    (heaters on, every unit powered), which the energy guard budgets with (default: the
    scheduler's ``bus_power_w``).
    """

    scheduler: SchedulerConfig
    stations: tuple[GroundStation, ...] = ()
    imaging: ImagingPlan | None = None
    tle: tuple[str, str] | None = None
    deadline: Literal["next_pass"] | float = "next_pass"
    min_deadline_s: float = 900.0
    max_deadline_s: float = 6.0 * 3600.0
    bus_peak_w: float | None = None


@dataclass(slots=True, frozen=True)
class Hal:
    """The hardware the mission components use; pass it to ``build_flight(hal=...)``."""

    eps: EpsSensor
    camera: Camera
    payload_power: PayloadPower
    platform: Platform | None = None
    models: ModelFiles | None = None
    latency_model: LatencyModel = "measured"
    name: str = "none"

    @classmethod
    def none(cls) -> Hal:
        """No hardware at all: what ``build_flight()`` uses without ``hal=``."""
        return cls(NoEps(), NoCamera(), NoPayloadPower())


__all__ = [
    "NO_EPS_READING",
    "Camera",
    "CameraFrame",
    "EpsReading",
    "EpsSensor",
    "Hal",
    "LatencyModel",
    "ModelFiles",
    "NoCamera",
    "NoEps",
    "NoPayloadPower",
    "PayloadPower",
    "Platform",
]
