"""Hardware abstraction: the device interfaces mission components use, and the ``eps``
component. Back-ends implement the interfaces: none (``Hal.none()``), the simulated world
(``hil.sim.sim_hal``), a board fed by the HIL bench over the sim-bridge (``fsw.hal.board``).

>>> from fsw.hal import Hal
>>> Hal.none().eps.read().valid
False
"""

from fsw.hal.interfaces import (
    NO_EPS_READING,
    Camera,
    CameraFrame,
    EpsReading,
    EpsSensor,
    Hal,
    LatencyModel,
    ModelFiles,
    NoCamera,
    NoEps,
    NoPayloadPower,
    PayloadPower,
    Platform,
)

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
