"""A test API for flying the spacecraft from pytest (in the spirit of fprime-gds's
IntegrationTestAPI): send and await verification stages, await telemetry and events,
assert on telemetry. Timeouts are wall-clock seconds; a failed wait raises an
``AssertionError`` (:class:`~ground.errors.AwaitTimeout` or
:class:`~ground.errors.CommandFailedError`) whose message lists what was seen.

::

    api = TestApi(station)
    api.send_and_await("PING", stage="completed", timeout=5)
    api.await_telemetry("eps.soc", lambda v: v > 0.5, timeout=30)
    api.await_event("sched.RELEASED", timeout=10)
    api.assert_telemetry("mode.mode", "NOMINAL")

>>> from fsw.ccsds import TEST_KEY_FILE, LinkConfig
>>> from ground.dictionary import minimal_dictionary
>>> from ground.station import GroundStation
>>> with GroundStation(minimal_dictionary(), LinkConfig.load(TEST_KEY_FILE), "loop://") as st:
...     TestApi(st).send_and_await("PING", timeout=0.2)
Traceback (most recent call last):
...
ground.errors.CommandFailedError: PING #0 did not reach 'completed' within 0.2 s; stages: sent +0.00
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fsw.ccsds import LinkConfig
from ground.dictionary import Dictionary
from ground.errors import AwaitTimeout, CommandFailedError, GroundError
from ground.records import ChannelValue, Decoded, EventRecord, format_value
from ground.station import GroundStation
from ground.tracker import CommandHandle, Stage

Predicate = Callable[[Any], bool]


def _describe(pred: Predicate | Any | None) -> str:
    if pred is None:
        return "any value"
    if callable(pred):
        name = getattr(pred, "__name__", "")
        return "the predicate" if name in ("", "<lambda>") else name
    return f"== {pred!r}"


def _matches(pred: Predicate | Any | None, value: Any) -> bool:
    if pred is None:
        return True
    if callable(pred):
        try:
            return bool(pred(value))
        except (TypeError, ValueError, ArithmeticError):
            return False
    return bool(value == pred)


def _stages_text(handle: CommandHandle) -> str:
    parts = []
    for r in handle.stages:
        text = f"{r.stage.value} +{r.t_ground_s - handle.t_sent_s:.2f}"
        if r.failure_code:
            text += f" ({r.failure_code}: {r.reason})"
        parts.append(text)
    return ", ".join(parts) or "none"


class TestApi:
    """Send, await and assert against a running :class:`GroundStation`.

    It records every decoded packet from its creation on (up to ``history``), so waits
    see every value, not just the latest one. ``timeout_s`` is the default timeout.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self, station: GroundStation, *, timeout_s: float = 10.0, history: int = 200_000
    ) -> None:
        self.station = station
        self.timeout_s = timeout_s
        self._history = history
        self._lock = threading.Lock()
        self._log: list[Decoded] = []
        self._dropped = 0
        station.on_decoded(self._record)

    # -- history ------------------------------------------------------------------------

    def _record(self, dec: Decoded) -> None:
        with self._lock:
            self._log.append(dec)
            if len(self._log) > self._history:
                cut = len(self._log) - self._history // 2
                del self._log[:cut]
                self._dropped += cut

    def mark(self) -> int:
        """A position in the history: waits with ``since=mark`` only look after it."""
        with self._lock:
            return self._dropped + len(self._log)

    def _since(self, pos: int) -> tuple[list[Decoded], int]:
        with self._lock:
            start = max(0, pos - self._dropped)
            return self._log[start:], self._dropped + len(self._log)

    def history(self, kind: str | None = None) -> list[Decoded]:
        """Everything decoded so far (``kind``: hk, event, verification, reply, unknown)."""
        with self._lock:
            return [d for d in self._log if kind is None or d.kind == kind]

    # -- commands -----------------------------------------------------------------------

    def send(self, command: str, /, **args: Any) -> CommandHandle:
        """Send a command (validated) and return at once."""
        return self.station.send_args(command, args)

    def send_and_await(
        self,
        command: str,
        /,
        stage: str | Stage = "completed",
        timeout: float | None = None,
        **args: Any,
    ) -> CommandHandle:
        """Send a command and wait for ``stage`` (``stage="failed"`` expects a failure)."""
        handle = self.station.send_args(command, args)
        return self.await_command(handle, stage, timeout)

    def send_time_tagged(
        self, command: str, release_tai_s: float, /, **args: Any
    ) -> tuple[CommandHandle, CommandHandle]:
        """Send ``command`` to run at ``release_tai_s`` (on-board TAI): (insert, command)."""
        return self.station.send_time_tagged(command, release_tai_s, **args)

    def await_command(
        self, handle: CommandHandle, stage: str | Stage = "completed", timeout: float | None = None
    ) -> CommandHandle:
        """Wait until ``handle`` reaches ``stage``; raise CommandFailedError otherwise."""
        want = Stage.parse(stage)
        timeout = self.timeout_s if timeout is None else timeout
        if want is Stage.FAILED:
            self.station.wait_for(lambda: handle.failed or handle.reached(Stage.COMPLETED), timeout)
            if handle.failed:
                return handle
            if handle.reached(Stage.COMPLETED):
                raise CommandFailedError(
                    f"{handle.name} #{handle.seq_count} was expected to "
                    f"fail but completed; stages: {_stages_text(handle)}"
                )
        else:
            self.station.wait_for(lambda: handle.reached(want) or handle.failed, timeout)
            if handle.reached(want):
                return handle
            if handle.failed:
                raise CommandFailedError(
                    f"{handle.name} #{handle.seq_count} failed at {handle.stages[-1].step}: "
                    f"{handle.failure_code}: {handle.reason}; stages: {_stages_text(handle)}"
                )
        stats = self.station.stats
        contact = (
            ""
            if self.station.in_contact
            else f"; no downlink (link {stats['transport_status']}, last TM "
            f"{stats['last_tm_age_s']} s ago)"
        )
        raise CommandFailedError(
            f"{handle.name} #{handle.seq_count} did not reach '{want.value}' within "
            f"{timeout:g} s; stages: {_stages_text(handle)}{contact}"
        )

    # -- telemetry ----------------------------------------------------------------------

    def telemetry(self, name: str) -> Any:
        """The latest value of channel ``name`` (GroundError if none yet)."""
        return self.station.telemetry.value(name)

    def await_contact(self, timeout: float | None = None) -> None:
        """Wait until the downlink flows (any TM decoded)."""
        timeout = self.timeout_s if timeout is None else timeout
        if not self.station.wait_for(lambda: self.station.session.stats["decoded"] > 0, timeout):
            stats = self.station.stats
            raise AwaitTimeout(
                f"no telemetry from the spacecraft within {timeout:g} s on {self.station.url} "
                f"(link {stats['transport_status']}, {stats['transport_rx_bytes']} bytes "
                f"received, {stats['tm_frames']} frames, {stats['decode_errors']} decode "
                "errors)"
            )

    def await_telemetry(
        self,
        name: str,
        predicate: Predicate | Any | None = None,
        timeout: float | None = None,
        *,
        since: int | None = None,
    ) -> ChannelValue:
        """Wait for a value of ``name`` satisfying ``predicate`` (a callable, a value to
        equal, or None for any) that arrives after ``since`` (default: now)."""
        ch = self.station.dictionary.channel(name)
        timeout = self.timeout_s if timeout is None else timeout
        pos = self.mark() if since is None else since
        seen: list[tuple[float, Any]] = []
        found: list[ChannelValue] = []

        def scan() -> bool:
            nonlocal pos
            records, pos = self._since(pos)
            for dec in records:
                if dec.kind != "hk":
                    continue
                values = dec.fields.get("values", {})
                if name in values:
                    value = values[name]
                    seen.append((dec.t_tai, value))
                    if _matches(predicate, value):
                        found.append(
                            ChannelValue(name, value, dec.t_tai, ch.limits.state(value), ch.units)
                        )
                        return True
            return False

        if self.station.wait_for(scan, timeout) or found:
            return found[0]
        if not seen:
            sids = [
                sid
                for sid, lay in self.station.session.decoder.hk_layouts.items()
                if name in lay.names
            ]
            raise AwaitTimeout(
                f"no value of {name} arrived within {timeout:g} s (it is in HK "
                f"structure(s) {sids or 'none'}; are they enabled?)"
            )
        shown = ", ".join(format_value(v) for _, v in seen[-10:])
        raise AwaitTimeout(
            f"no value of {name} matched {_describe(predicate)} within "
            f"{timeout:g} s; saw {len(seen)} value(s), last: {shown}"
        )

    def assert_telemetry(
        self, name: str, predicate: Predicate | Any | None = None, timeout: float = 0.0
    ) -> ChannelValue:
        """Assert on the latest value of ``name`` now (or wait up to ``timeout`` for one
        that matches, the latest included)."""
        current = self.station.telemetry.get(name)
        if current is None:
            self.station.dictionary.channel(name)  # unknown name: did-you-mean error
        if current is not None and _matches(predicate, current.value):
            return current
        if timeout > 0:
            return self.await_telemetry(name, predicate, timeout)
        if current is None:
            raise AwaitTimeout(f"no value of {name} received yet")
        raise AwaitTimeout(
            f"{name} is {current.text} {current.units}".rstrip()
            + f" (TAI {current.t_tai:.1f}), expected {_describe(predicate)}"
        )

    # -- events -------------------------------------------------------------------------

    def await_event(
        self,
        name: str | None = None,
        predicate: Callable[[EventRecord], bool] | None = None,
        timeout: float | None = None,
        *,
        since: int | None = None,
    ) -> EventRecord:
        """Wait for an event whose name matches ``name`` (a glob; None for any) and
        ``predicate(event)``, arriving after ``since`` (default: now)."""
        if name is not None and not any(c in name for c in "*?["):
            self.station.dictionary.event(name)  # unknown name: did-you-mean error
        timeout = self.timeout_s if timeout is None else timeout
        pos = self.mark() if since is None else since
        seen: list[EventRecord] = []
        found: list[EventRecord] = []

        def scan() -> bool:
            nonlocal pos
            records, pos = self._since(pos)
            for dec in records:
                ev = dec.event
                if ev is None:
                    continue
                seen.append(ev)
                if (name is None or fnmatch.fnmatchcase(ev.name, name)) and (
                    predicate is None or _matches(predicate, ev)
                ):
                    found.append(ev)
                    return True
            return False

        if self.station.wait_for(scan, timeout) or found:
            return found[0]
        shown = "; ".join(f"{e.name}: {e.message}" for e in seen[-10:]) or "none"
        raise AwaitTimeout(
            f"no event matching {name or 'any name'}"
            f"{'' if predicate is None else ' and the predicate'} within "
            f"{timeout:g} s; events seen ({len(seen)}): {shown}"
        )

    def events(self, name: str | None = None) -> list[EventRecord]:
        """Events recorded so far, optionally filtered by a glob."""
        return [
            d.event
            for d in self.history("event")
            if d.event is not None and (name is None or fnmatch.fnmatchcase(d.event.name, name))
        ]


def ground_api_fixture(
    dictionary: Dictionary
    | dict[str, Any]
    | str
    | Path
    | Callable[[], Dictionary | dict[str, Any] | str | Path],
    link_config: LinkConfig | Callable[[], LinkConfig],
    url: str | Callable[[], str],
    *,
    name: str = "ground_api",
    scope: str = "function",
    timeout_s: float = 10.0,
    requires: tuple[str, ...] = (),
) -> Any:
    """A pytest fixture yielding a :class:`TestApi` on a fresh :class:`GroundStation`.

    Each argument may be a callable evaluated when the fixture is set up (e.g. to pick
    up a port chosen by another fixture); ``requires`` names fixtures to set up first
    (e.g. the one that starts the flight software)::

        ground_api = ground_api_fixture("dictionary.json", LinkConfig.load(KEYS),
                                        "udp://127.0.0.1:10025")

        def test_ping(ground_api):
            ground_api.send_and_await("PING", timeout=5)
    """
    import pytest

    def _value(x: Any) -> Any:
        return x() if callable(x) and not isinstance(x, type) else x

    def _fixture(request: pytest.FixtureRequest) -> Iterator[TestApi]:
        for other in requires:
            request.getfixturevalue(other)
        try:
            station = GroundStation(_value(dictionary), _value(link_config), _value(url))
        except GroundError as exc:
            pytest.fail(f"cannot start the ground station: {exc}")
        with station:
            yield TestApi(station, timeout_s=timeout_s)

    _fixture.__name__ = name
    return pytest.fixture(scope=scope, name=name)(_fixture)  # type: ignore[call-overload]


__all__ = ["TestApi", "ground_api_fixture"]
