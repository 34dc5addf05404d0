"""The one error family of the simulated world (``hil.sim`` world modules)."""

from __future__ import annotations


class WorldError(Exception):
    """The simulated world cannot do what was asked (bad time, bad argument).

    Messages say what was wrong and what to do, e.g.
    ``WorldError("t=2173990000 is past the precomputed run (ends 2173927000): build the
    World with a longer duration_s")``.
    """


class ScenarioError(WorldError):
    """A scenario file is missing, unreadable or has a bad or missing value.

    The message names the file and the key, e.g.
    ``ScenarioError("leo.toml: [battery].capacity_wh must be > 0, got -3")``.
    """
