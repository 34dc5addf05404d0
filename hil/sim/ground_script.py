"""The SITL's automated ground station: a pass plan flown with the ground segment's API.

The script knows the pass predictions (as a mission-control system would) and, in each
pass long enough, sends four commands through :class:`ground.GroundSession`: a ``PING``,
a ``PARAM_SET`` of the payload's cascade threshold (alternating between two values), an
``HK_ONE_SHOT`` of the payload's housekeeping report, and a time-tagged ``PING``
(``SCHED_INSERT``) released two minutes later inside the same pass. COP-1
(``GroundSession.poll``) retransmits TC frames the channel lost. A TM frame lost on the
downlink can take a command's verification report with it; the script then sends the
command again (each of the four is idempotent) until a completion report arrives, at most
``max_attempts`` times. A command counts as completed when one of its attempts was
verified completed (for the time-tagged one: the insert and the released ``PING``).

Everything received goes through the session into its archive; the script keeps the
payload's results (frame id -> keep) to score them against the simulator's truth.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsw.ccsds.config import LinkConfig
from fsw.power.predictor import PassWindow
from ground import Archive, CommandHandle, Decoded, GroundSession

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class ScriptConfig:
    """The pass plan: cascade thresholds to alternate, retry timing, attempts."""

    threshold_a: float = 0.75
    threshold_b: float = 0.85
    retry_after_s: float = 25.0
    max_attempts: int = 5
    start_after_aos_s: float = 10.0
    min_pass_left_s: float = 90.0
    time_tag_delay_s: float = 120.0


@dataclass(slots=True)
class Logical:
    """One command of the plan and its attempts (a resend is a new TC)."""

    name: str
    args: dict[str, Any]
    pass_index: int
    attempts: list[CommandHandle] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    inner: list[CommandHandle] = field(default_factory=list)  # time-tagged: released TCs
    release_s: float = 0.0


class GroundScript:
    """Drives a :class:`ground.GroundSession` through the passes (see module docstring)."""

    def __init__(
        self,
        dictionary: dict[str, Any],
        link_config: LinkConfig,
        passes: Sequence[PassWindow],
        config: ScriptConfig | None = None,
        *,
        archive_path: Path | None = None,
    ) -> None:
        self.config = config or ScriptConfig()
        # SITL's ground clock is the simulated TAI time (a station's is Unix seconds).
        self.archive = (
            Archive(archive_path, ground_clock="tai") if archive_path is not None else None
        )
        self.session = GroundSession(dictionary, link_config, archive=self.archive)
        self.dictionary = dictionary
        self.passes = sorted(passes, key=lambda p: p.aos_tai)
        self.plan: list[Logical] = []
        self.results: dict[int, bool] = {}
        self._planned: set[int] = set()
        self._cltus = 0
        self._param_id = _param_id(dictionary, "payload.confidence_threshold")
        self._hk_sid = _component_sid(dictionary, "payload")

    def add_pass(self, window: PassWindow) -> None:
        """Plan one more pass (a contact granted while flying, after the last one)."""
        if self.passes and window.aos_tai < self.passes[-1].aos_tai:
            raise ValueError("passes are added in order of AOS")
        self.passes.append(window)

    # ------------------------------------------------------------------ stepping
    def _pass_at(self, now_tai: float) -> int | None:
        for i, p in enumerate(self.passes):
            if p.aos_tai <= now_tai <= p.los_tai:
                return i
            if p.aos_tai > now_tai:
                break
        return None

    def tick(
        self, now_tai: float, *, allow_new: bool = True, end_tai: float = math.inf
    ) -> list[bytes]:
        """CLTUs to transmit now: COP-1 retransmissions, the pass plan, resends.

        ``end_tai`` is when the contact ends for good (the end of the run): a pass counts
        only up to it, so nothing is sent that could not be seen through.
        """
        out = list(self.session.poll(now_tai))
        i = self._pass_at(now_tai)
        if i is not None:
            p = self.passes[i]
            left = min(p.los_tai, end_tai) - now_tai
            cfg = self.config
            if (
                allow_new
                and i not in self._planned
                and now_tai >= p.aos_tai + cfg.start_after_aos_s
                and left >= cfg.min_pass_left_s
            ):
                self._planned.add(i)
                out += self._send_plan(i, now_tai, left)
            out += self._resend(now_tai, left)
        self._cltus += len(out)
        return out

    def receive(self, data: bytes, now_tai: float) -> None:
        """Downlink bytes as received (CADUs, some corrupted)."""
        for d in self.session.receive(data, now_tai):
            fields = _fields_if(d, "payload.RESULT")
            if fields is not None:
                self.results[int(fields["frame_id"])] = bool(fields["keep"])

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()

    # ------------------------------------------------------------------ the plan
    def _send_plan(self, i: int, now: float, left_s: float) -> list[bytes]:
        cfg = self.config
        threshold = cfg.threshold_a if len(self._planned) % 2 else cfg.threshold_b
        plan = [
            Logical("PING", {}, i),
            Logical("PARAM_SET", {"params": [{"param_id": self._param_id, "value": threshold}]}, i),
            Logical("HK_ONE_SHOT", {"sids": [{"sid": self._hk_sid}]}, i),
        ]
        if left_s >= cfg.time_tag_delay_s + 90.0:
            plan.append(Logical("SCHED_INSERT", {}, i, release_s=cfg.time_tag_delay_s))
        out: list[bytes] = []
        for cmd in plan:
            out += self._attempt(cmd, now)
        self.plan += plan
        return out

    def _attempt(self, cmd: Logical, now: float) -> list[bytes]:
        if cmd.name == "SCHED_INSERT":
            handle, inner, cltus = self.session.send_time_tagged("PING", now + cmd.release_s, now)
            cmd.inner.append(inner)
        else:
            handle, cltus = self.session.send(cmd.name, now, **cmd.args)
        cmd.attempts.append(handle)
        cmd.sent_at.append(now)
        return list(cltus)

    def _resend(self, now: float, left_s: float) -> list[bytes]:
        cfg = self.config
        out: list[bytes] = []
        for cmd in self.plan:
            if self.state(cmd) in ("completed", "failed") or len(cmd.attempts) >= cfg.max_attempts:
                continue
            wait = cfg.retry_after_s + (cmd.release_s if cmd.name == "SCHED_INSERT" else 0.0)
            if now - cmd.sent_at[-1] < wait:
                continue
            if left_s < wait + 10.0:
                continue  # not enough pass left to see the answer
            if cmd.name == "SCHED_INSERT" and left_s < cmd.release_s + 60.0:
                continue
            log.info(
                "resending %s (attempt %d): no completion report yet",
                cmd.name,
                len(cmd.attempts) + 1,
            )
            out += self._attempt(cmd, now)
        return out

    # ------------------------------------------------------------------ accounting
    def state(self, cmd: Logical) -> str:
        """``completed``, ``failed``, ``accepted`` or ``sent`` for a planned command.

        A time-tagged command is completed when an insert and the PING it released both
        were; any attempt completing is enough (a resend after a lost report).
        """
        stages = [_stage(h) for h in cmd.attempts]
        if cmd.name == "SCHED_INSERT":
            inner = [_stage(h) for h in cmd.inner]
            if "completed" in stages and "completed" in inner:
                return "completed"
            if "failed" in inner:
                stages.append("failed")
            stages = [s if s != "completed" else "accepted" for s in stages]
        if "completed" in stages:
            return "completed"
        if "failed" in stages:
            return "failed"
        if "accepted" in stages:
            return "accepted"
        return "sent"

    def summary(self) -> dict[str, Any]:
        states = [self.state(c) for c in self.plan]
        attempts = sum(len(c.attempts) for c in self.plan)
        stats = self.session.stats
        return {
            "commands": {
                "sent": len(self.plan),
                "accepted": sum(s in ("accepted", "completed") for s in states),
                "completed": states.count("completed"),
                "failed": states.count("failed"),
                "attempts": attempts,
                "resent": attempts - len(self.plan),
                "time_tagged": sum(c.name == "SCHED_INSERT" for c in self.plan),
                "timeouts_seen": int(stats.get("commands_timed_out", 0)),
            },
            "passes_used": len(self._planned),
            "cltus_sent": self._cltus,
            "retransmissions": int(stats.get("fop_ad_retransmissions", 0)),
            # Playback duplicates count as received (they arrived; the archive has them),
            # and so do the CFDP packets the ground's file entity took.
            "packets_received": int(stats.get("decoded", 0))
            + int(stats.get("decode_errors", 0))
            + int(stats.get("playback_duplicates", 0))
            + int(stats.get("cfdp_packets", 0)),
            "cfdp_packets_received": int(stats.get("cfdp_packets", 0)),
            "playback_received": int(stats.get("playback_packets", 0)),
            "playback_new": int(stats.get("playback_new", 0)),
            "playback_duplicates": int(stats.get("playback_duplicates", 0)),
            "frames_rejected": int(stats.get("tm_frames_rejected", 0))
            + int(stats.get("sync_fecf_errors", 0)),
            "decode_errors": int(stats.get("decode_errors", 0)),
            "events_received": int(stats.get("events", 0)),
            "hk_reports_received": int(stats.get("hk_reports", 0)),
            "results_received": len(self.results),
        }


# ---------------------------------------------------------------------------- glue
# The few places that depend on the shape of the ground segment's objects.


def _param_id(dictionary: dict[str, Any], name: str) -> int:
    for p in dictionary["parameters"]:
        if p["name"] == name:
            return int(p["id"])
    raise KeyError(f"the dictionary has no parameter {name}")


def _component_sid(dictionary: dict[str, Any], component: str) -> int:
    for h in dictionary["housekeeping"]:
        if h["name"] == component:
            return int(h["sid"])
    raise KeyError(f"the dictionary has no housekeeping report for {component}")


def _stage(handle: CommandHandle) -> str:
    """``completed``, ``failed``, ``accepted`` or ``sent`` for a ground CommandHandle."""
    if handle.reached("completed"):
        return "completed"
    if handle.failed:
        return "failed"
    if handle.reached("accepted"):
        return "accepted"
    return "sent"


def _fields_if(decoded: Decoded, name: str) -> dict[str, Any] | None:
    return decoded.fields if decoded.name == name and decoded.error is None else None


__all__ = ["GroundScript", "Logical", "ScriptConfig"]
