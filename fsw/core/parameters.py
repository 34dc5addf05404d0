"""The ``prm`` component: PUS service 20 on-board parameter management.

(20,1) asks for values and is answered by (20,2); (20,3) sets values; the mission
subservice (20,128) saves every value to storage. A value outside its declared range
fails acceptance (1,2) ARG_OUT_OF_RANGE; a value a validator refuses fails completion
(1,8) VALUE_REJECTED with the validator's reason, and no value of that TC changes.
Saved values are loaded at boot (by full name, so ids may move between versions); a
stored value that is no longer valid is refused with ``prm.LOAD_REFUSED`` and the
default stays. The core's values apply when it is built, each mission component's when
it is added; ``prm.LOADED`` at flight start counts all of them.
"""

from __future__ import annotations

from typing import Any

from fsw.core.component import Component
from fsw.core.declarations import Channel, Event, Report, Severity, command
from fsw.core.errors import CommandFailed, CoreError, FailureCode
from fsw.core.persistence import Persistence, clip
from fsw.core.registry import ParamInfo, registry_of
from fsw.core.wire import Arg, Array, Dynamic

STORE_KEY = "params"
_PID = Arg("param_id", "u16")
_NAME = Arg("name", "str", max_len=64)
_TEXT = Arg("value", "str", max_len=64)


def _shown(value: object) -> str:
    """A value as an operator reads it: floats to float32 precision (0.85, not
    0.8500000238418579), everything else as it is.

    >>> _shown(0.8500000238418579), _shown(5), _shown(True)
    ('0.85', '5', 'True')
    """
    if isinstance(value, float):
        return f"{value:.7g}"
    return str(value)


class ParameterManager(Component):
    """Get, set, validate and save parameters of every component."""

    NAME = "prm"
    DESCRIPTION = "PUS service 20: get, set (with validators) and save parameters."
    TELEMETRY = (
        Channel("count", "u16", description="parameters on board", id=4),
        Channel("sets", "u32", description="parameter values changed by command", id=5),
        Channel("saves", "u32", description="successful saves to storage", id=6),
        Channel("last_set_id", "u16", description="id of the last parameter set", id=7),
    )
    EVENTS = (
        Event("CHANGED", Severity.INFO, "{name} = {value}", (_NAME, _TEXT), id=1),
        Event(
            "REFUSED",
            Severity.LOW,
            "{name} = {value} refused: {reason}",
            (_NAME, _TEXT, Arg("reason", "str", max_len=200)),
            id=2,
        ),
        Event(
            "SAVED", Severity.INFO, "{count} parameter values saved", (Arg("count", "u16"),), id=3
        ),
        Event(
            "LOADED",
            Severity.INFO,
            "{count} saved parameter values loaded",
            (Arg("count", "u16"),),
            id=4,
        ),
        Event(
            "LOAD_REFUSED",
            Severity.LOW,
            "{name}: saved value {value} refused ({reason}); default kept",
            (_NAME, _TEXT, Arg("reason", "str", max_len=200)),
            id=5,
        ),
    )
    REPORTS = (
        Report(
            "VALUES",
            20,
            2,
            (Array("params", (_PID, Dynamic("value", "param_value", "param_id"))),),
            "parameter values (answer to (20,1))",
        ),
    )
    HK_INTERVAL_S = 30.0

    def __init__(self, storage: Persistence, name: str | None = None) -> None:
        super().__init__(name)
        self._storage = storage
        self._saved: dict[str, Any] = {}
        #: Saved values applied since boot (core and mission components), not yet announced.
        self.loaded = 0
        self._announced = False

    # ------------------------------------------------------------ load / apply
    def load_saved(self) -> None:
        """Read the saved values (once, at boot) and apply them to registered components.

        Components added later get theirs from :meth:`apply_saved`; :meth:`announce_loaded`
        (at flight start) reports the total in one ``prm.LOADED``.
        """
        doc = self._storage.load_json(STORE_KEY)
        values = doc.get("values") if isinstance(doc, dict) else None
        self._saved = dict(values) if isinstance(values, dict) else {}
        rt = registry_of(self)
        self.loaded += sum(self._apply_saved(info) for info in rt.param_by_id.values())

    def apply_saved(self, comp: Component) -> int:
        """Apply saved values to a newly registered component; returns how many.

        They count towards the boot's ``prm.LOADED``; a component added after the flight
        started gets an event of its own.
        """
        rt = registry_of(self)
        n = sum(self._apply_saved(i) for i in rt.param_by_id.values() if i.component is comp)
        if self._announced and n:
            self.event("LOADED", min(n, 0xFFFF))
        else:
            self.loaded += n
        return n

    def announce_loaded(self) -> int:
        """Raise ``prm.LOADED`` with every saved value applied at boot (once; 0: silent).

        Returns the count.
        """
        if self._announced:
            return self.loaded
        self._announced = True
        if self.loaded:
            self.event("LOADED", min(self.loaded, 0xFFFF))
        return self.loaded

    def _apply_saved(self, info: ParamInfo) -> bool:
        if info.full_name not in self._saved:
            return False
        raw = self._saved[info.full_name]
        try:
            value = info.param.arg.check(raw)
            reason = self._validate(info, value)
        except CoreError as exc:
            reason = exc.reason
        if reason:
            self.event("LOAD_REFUSED", clip(info.full_name, 64), clip(str(raw), 64), clip(reason))
            return False
        info.component.binding.param_values[info.param.name] = value
        self._publish()
        return True

    def _validate(self, info: ParamInfo, value: Any) -> str | None:
        try:
            if info.param.validator is not None:
                reason = info.param.validator(value)
                if reason:
                    return reason
            return info.component.validate_param(info.param.name, value)
        except Exception as exc:  # a validator that crashes refuses the value
            return f"validator raised {type(exc).__name__}: {exc}"

    def _publish(self) -> None:
        if self.is_bound:
            self.tlm("count", len(registry_of(self).param_by_id))

    def on_init(self) -> None:
        self._publish()

    # ------------------------------------------------------------ API
    def set_values(self, pairs: list[tuple[ParamInfo, Any]]) -> None:
        """Validate every pair first, then set them all (all or nothing)."""
        for info, value in pairs:
            reason = self._validate(info, value)
            if reason:
                self.event(
                    "REFUSED", clip(info.full_name, 64), clip(_shown(value), 64), clip(reason)
                )
                raise CommandFailed(
                    FailureCode.VALUE_REJECTED,
                    f"{info.full_name}={value} refused: {reason}; value stays {info.value}",
                )
        for info, value in pairs:
            info.component.binding.param_values[info.param.name] = value
            self.tlm_inc("sets")
            self.tlm("last_set_id", info.id)
            self.event("CHANGED", clip(info.full_name, 64), clip(_shown(value), 64))
            try:
                info.component.on_param_changed(info.param.name, value)
            except Exception:
                info.component.log.exception("on_param_changed(%s) raised", info.param.name)
                registry_of(self).count(info.component, 2)

    def set(self, full_name: str, value: Any) -> None:
        """Set one parameter by full name (checks range and validators).

        >>> fs.prm.set("health.max_restarts", 5)   # doctest: +SKIP
        """
        rt = registry_of(self)
        info = rt.param_by_name.get(full_name)
        if info is None:
            raise CommandFailed(FailureCode.NOT_FOUND, f"no parameter '{full_name}'")
        self.set_values([(info, info.param.arg.check(value))])

    def save(self) -> int:
        """Save every parameter value; returns how many were saved."""
        rt = registry_of(self)
        values = {i.full_name: i.value for i in rt.param_by_id.values()}
        # keep saved values of components not registered in this build
        merged = {**self._saved, **values}
        self._storage.save_json(STORE_KEY, {"version": 1, "values": merged})
        self._saved = merged
        self.tlm_inc("saves")
        self.event("SAVED", min(len(values), 0xFFFF))
        return len(values)

    # ------------------------------------------------------------ commands
    def _info(self, pid: int) -> ParamInfo:
        info = registry_of(self).param_by_id.get(pid)
        if info is None:
            raise CommandFailed(FailureCode.NOT_FOUND, f"no parameter with id 0x{pid:04X}")
        return info

    @command(
        "PARAM_GET",
        service=20,
        subservice=1,
        args=(Array("param_ids", (_PID,)),),
        replies=((20, 2),),
        description="Report parameter values in a (20,2).",
    )
    def get(self, param_ids: list[dict[str, Any]]) -> None:
        infos = [self._info(p["param_id"]) for p in param_ids]
        self.send_report("VALUES", params=[{"param_id": i.id, "value": i.value} for i in infos])

    @command(
        "PARAM_SET",
        service=20,
        subservice=3,
        args=(Array("params", (_PID, Dynamic("value", "param_value", "param_id"))),),
        description="Set parameter values (all or nothing; validators may refuse).",
    )
    def set_cmd(self, params: list[dict[str, Any]]) -> None:
        self.set_values([(self._info(p["param_id"]), p["value"]) for p in params])

    @command(
        "PARAM_SAVE",
        service=20,
        subservice=128,
        description="Save every parameter value to storage (atomic, CRC-checked).",
    )
    def save_cmd(self) -> None:
        self.save()


__all__ = ["STORE_KEY", "ParameterManager"]
