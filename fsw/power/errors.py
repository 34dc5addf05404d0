"""The one error family of ``fsw.power``: prediction and power-aware scheduling."""

from __future__ import annotations


class PowerError(Exception):
    """Bad input to orbit prediction or the power scheduler.

    Messages say what was wrong and what to do, e.g.
    ``PowerError("TLE line 2 checksum is 3, expected 7: re-uplink the element set")``.
    """


class TleError(PowerError):
    """An uplinked two-line element set cannot be parsed or propagated."""


class SchedulerConfigError(PowerError):
    """A scheduler parameter is out of range or inconsistent with the others."""
