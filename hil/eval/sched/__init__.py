"""Scheduler evaluation: Gnomon's power scheduler against baselines and the offline oracle.

``gnomon sched eval`` (:mod:`.cli`) runs it; ``gnomon bench sched`` times it. The modules,
in the order the data flows:

- :mod:`.timeline`: a scenario's world precomputed and reduced to 60 s ticks (solar
  input, radio and sun per tick, frames as jobs with deadlines): :class:`~.timeline.Timeline`;
- :mod:`.scenarios`: randomized scenarios sized so energy or compute binds, made feasible;
- :mod:`.policies`: the flight scheduler (``gnomon``) and the baselines ``greedy``,
  ``duty_cycle`` and ``sunlit_only``;
- :mod:`.simulate`: one policy flown through a timeline with the EPS and fault protection;
- :mod:`.oracle`: the linear program with perfect knowledge, an upper bound on any policy;
- :mod:`.metrics`: every policy and the oracle on each timeline, and the report;
- :mod:`.plot`: one PNG per scenario.

Import from the modules; this package re-exports nothing.
"""
