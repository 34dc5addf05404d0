"""The one error family of ``hil.rtl``: every failure is an :class:`RtlError`.

>>> str(ScrubberError("scrubber did not answer within 1.0 s"))
'scrubber did not answer within 1.0 s'
"""

from __future__ import annotations


class RtlError(Exception):
    """Something went wrong with the FPGA integrity blocks or their simulation."""


class ScrubberError(RtlError):
    """The memory scrubber (hardware or model) is missing, misconfigured or stuck."""


class SimulationError(RtlError):
    """A cocotb simulation could not be built or run, or left no usable results."""
