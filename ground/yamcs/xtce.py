"""The XTCE 1.2 mission database of a Gnomon dictionary, as Yamcs 5.12 reads it.

``gnomon dict export --format xtce`` writes it; ``gnomon yamcs config`` puts it in the
Yamcs configuration. Everything comes from the exported dictionary
(:class:`ground.dictionary.Dictionary`), nothing from flight code.

Layout (one SpaceSystem per component under the root, ``/GNOMON/eps/soc_pct``):

- Root: the CCSDS + PUS-C TM headers (abstract containers ``ccsds``, ``pus_tm``), the
  PUS-1 reports (``ack_apid``, ``ack_seq``, ``ack_failure_code``, ``ack_reason``), the
  abstract TC ``pus_tc`` whose VerifierSet runs Yamcs' ``org.yamcs.pus.Pus1Verifier``
  on the (1,1)..(1,8) reports (Accepted, Started, Completed), and one container per
  housekeeping structure (``HK_<name>``, selected by APID, (3,25) and the SID).
- Per component: its channels (limits as ``DefaultAlarm`` static ranges: warning =
  yellow, critical = red), its reports (selected by APID + service + subservice; arrays
  with their count; CUC 4+2 fields as absolute TAI times), its events (one container per
  event id, arguments included) and its commands (every argument; arrays with the
  count argument before them, which Yamcs fills in itself).
- Dictionary types that depend on another field's value (a parameter's value, an
  event's arguments, an HK structure) become one container or command per value:
  ``PARAM_SET`` is ``SET_PARAM_<name>`` per on-board parameter, ``prm.VALUES`` is
  ``PARAM_<name>`` for an answer about one parameter.
- What XTCE cannot describe is left out **and named** in :attr:`XtceExport.omitted`
  (the nested, self-delimited TC packets of ``SCHED_INSERT`` and ``SEQ_LOAD``: Yamcs
  builds time-tagged TCs itself with the ``pus11ScheduleAt`` option).

>>> from ground.dictionary import Dictionary, minimal_dictionary
>>> out = to_xtce(Dictionary(minimal_dictionary()))
>>> out.xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
True
>>> out.commands >= 1 and out.containers >= 1
True
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ground.dictionary import (
    INT_RANGES,
    ChannelDef,
    CommandDef,
    Dictionary,
    FieldDef,
    Limits,
    ReportDef,
)

NAMESPACE = "http://www.omg.org/spec/XTCE/20180204"
#: A ``{name}`` or ``{name:spec}`` field of an event's message format.
_FIELD = re.compile(r"\{(\w+)(?:![rsa])?(?::[^{}]*)?\}")
ROOT = "GNOMON"
#: 2^-16 s: the fine octets of a CUC 4+2 time.
CUC_SCALE = "0.0000152587890625"
FLOAT_BITS = {"f32": "32", "f64": "64"}
_INT_BITS = {"u8": 8, "u16": 16, "u32": 32, "i8": 8, "i16": 16, "i32": 32, "bool": 8}
#: (stage, failure subtype) of the three PUS-1 verifiers.
_VERIFIERS = (
    ("AcceptedVerifier", "Accepted", 1, 2, "PT10S"),
    ("ExecutionVerifier", "Started", 3, 4, "PT10S"),
    ("CompleteVerifier", "Completed", 7, 8, "PT60S"),
)


class XtceError(Exception):
    """The dictionary holds something the exporter cannot express."""


@dataclass(slots=True)
class XtceExport:
    """The XTCE text and what went into it."""

    xml: str
    commands: int = 0
    containers: int = 0
    parameters: int = 0
    alarms: int = 0
    #: Dictionary items with no XTCE form, each with the reason.
    omitted: list[str] = field(default_factory=list)
    #: Yamcs' PusEventDecoder templates: ``{"eventId": name, "template": text}``, the
    #: dictionary's message with each ``{arg}`` naming the event's parameter.
    event_templates: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the operator."""
        text = (
            f"{self.commands} commands, {self.containers} containers, "
            f"{self.parameters} parameters, {self.alarms} alarm definitions"
        )
        if self.omitted:
            text += f"; left out: {'; '.join(self.omitted)}"
        return text


def _short(name: str, component: str) -> str:
    """``eps.soc_pct`` -> ``soc_pct`` (names without the prefix stay as they are)."""
    prefix = component + "."
    return name[len(prefix) :] if name.startswith(prefix) else name.replace(".", "_")


def _sub(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _System:
    """One SpaceSystem being filled (sections created on demand, in schema order)."""

    def __init__(self, name: str, path: str) -> None:
        self.name = name
        self.path = path
        self.ptypes: list[ET.Element] = []
        self.params: list[ET.Element] = []
        self.containers: list[ET.Element] = []
        self.atypes: list[ET.Element] = []
        self.commands: list[ET.Element] = []
        self._names: set[str] = set()

    def unique(self, name: str) -> str:
        """``name``, or ``name_2``... if taken in this SpaceSystem's type namespace."""
        out, n = name, 1
        while out in self._names:
            n += 1
            out = f"{name}_{n}"
        self._names.add(out)
        return out

    def element(self, description: str = "") -> ET.Element:
        attrs = {"name": self.name}
        if description:
            attrs["shortDescription"] = description
        ss = ET.Element("SpaceSystem", attrs)
        if self.ptypes or self.params or self.containers:
            tm = _sub(ss, "TelemetryMetaData")
            for tag, items in (
                ("ParameterTypeSet", self.ptypes),
                ("ParameterSet", self.params),
                ("ContainerSet", self.containers),
            ):
                if items:
                    _sub(tm, tag).extend(items)
        if self.atypes or self.commands:
            cm = _sub(ss, "CommandMetaData")
            if self.atypes:
                _sub(cm, "ArgumentTypeSet").extend(self.atypes)
            if self.commands:
                _sub(cm, "MetaCommandSet").extend(self.commands)
        return ss


def _number_type(kind: str, f: FieldDef, attrs: dict[str, str]) -> ET.Element:
    """An Integer/Float type (an argument's range as its valid range)."""
    t = f.type
    if t in FLOAT_BITS:
        bits = FLOAT_BITS[t]
        el = ET.Element(f"Float{kind}Type", {**attrs, "sizeInBits": bits})
        _units(el, f.units)
        _sub(el, "FloatDataEncoding", sizeInBits=bits)
        lo: float | None = None
        hi: float | None = None
        if kind == "Argument":
            lo, hi = f.min, f.max
    else:
        signed = t.startswith("i")
        el = ET.Element(
            f"Integer{kind}Type", {**attrs, "signed": str(signed).lower(), "sizeInBits": "32"}
        )
        _units(el, f.units)
        _sub(
            el,
            "IntegerDataEncoding",
            sizeInBits=str(_INT_BITS[t]),
            encoding="twosComplement" if signed else "unsigned",
        )
        full_lo, full_hi = INT_RANGES[t]
        lo = f.min if kind == "Argument" and f.min is not None and f.min > full_lo else None
        hi = f.max if kind == "Argument" and f.max is not None and f.max < full_hi else None
        if lo is not None or hi is not None:
            lo, hi = (full_lo if lo is None else lo), (full_hi if hi is None else hi)
    if lo is not None or hi is not None:
        rng = {}
        if lo is not None:
            rng["minInclusive"] = _num(lo)
        if hi is not None:
            rng["maxInclusive"] = _num(hi)
        _sub(_sub(el, "ValidRangeSet"), "ValidRange", **rng)
    return el


def _leaf_type(
    kind: str, f: FieldDef, name: str, limits: Limits | None = None
) -> tuple[ET.Element, bool]:
    """A Parameter (``kind`` "Parameter") or Argument type for leaf field ``f``; the
    bool tells whether it carries an alarm."""
    t = f.type
    attrs = {"name": name}
    if f.description:
        attrs["shortDescription"] = f.description
    alarm = False
    if t in ("u8", "u16", "u32", "i8", "i16", "i32", "f32", "f64"):
        el = _number_type(kind, f, attrs)
        alarm = _alarm(el, limits)
    elif t == "bool" and limits is not None and limits.any:
        # XTCE has no alarm on a Boolean type: a limited flag becomes false/true labels
        # whose "true" raises the alarm (Gnomon: any limit below 1 trips on true).
        el = ET.Element(f"Enumerated{kind}Type", attrs)
        _sub(el, "IntegerDataEncoding", sizeInBits="8")
        enums = _sub(el, "EnumerationList")
        for value, label in ((0, "false"), (1, "true")):
            _sub(enums, "Enumeration", value=str(value), label=label)
        level = "critical" if limits.red_high is not None else "warning"
        alarms = _sub(_sub(el, "DefaultAlarm"), "EnumerationAlarmList")
        _sub(alarms, "EnumerationAlarm", alarmLevel=level, enumerationLabel="true")
        alarm = True
    elif t == "bool":
        el = ET.Element(f"Boolean{kind}Type", attrs)
        _sub(el, "IntegerDataEncoding", sizeInBits="8")
    elif t == "enum":
        el = ET.Element(f"Enumerated{kind}Type", attrs)
        _sub(el, "IntegerDataEncoding", sizeInBits=str(_INT_BITS[f.base]))
        enums = _sub(el, "EnumerationList")
        for value, label in f.labels:
            _sub(enums, "Enumeration", value=str(value), label=label)
    elif t == "str":
        el = ET.Element(f"String{kind}Type", attrs)
        enc = _sub(el, "StringDataEncoding", encoding="UTF-8")
        var = _sub(enc, "Variable", maxSizeInBits=str(8 * (f.max_len or 255)))
        # The schema wants a buffer size first; Yamcs skips this reference by name and
        # reads the u8 length in front of the text.
        _sub(_sub(var, "DynamicValue"), "ParameterInstanceRef", parameterRef="_yamcs_ignore")
        _sub(var, "LeadingSize", sizeInBitsOfSizeTag="8")
    elif t == "cuc":
        el = ET.Element(f"AbsoluteTime{kind}Type", attrs)
        enc = _sub(el, "Encoding", scale=CUC_SCALE, offset="0")
        _sub(enc, "IntegerDataEncoding", sizeInBits="48")
        ref = _sub(el, "ReferenceTime")
        _sub(ref, "Epoch").text = "TAI"
    else:
        raise XtceError(f"field {f.name}: type {t} has no XTCE form")
    return el, alarm


def _units(el: ET.Element, units: str) -> None:
    us = _sub(el, "UnitSet")
    if units:
        _sub(us, "Unit").text = units


def _alarm(el: ET.Element, limits: Limits | None) -> bool:
    """Gnomon's limits as static alarm ranges: inside [yellow_low, yellow_high] is OK,
    outside [red_low, red_high] is critical (the same strict comparisons)."""
    if limits is None or not limits.any:
        return False
    ranges = _sub(_sub(el, "DefaultAlarm"), "StaticAlarmRanges")
    for tag, low, high in (
        ("WarningRange", limits.yellow_low, limits.yellow_high),
        ("CriticalRange", limits.red_low, limits.red_high),
    ):
        if low is None and high is None:
            continue
        attrs = {}
        if low is not None:
            attrs["minInclusive"] = _num(low)
        if high is not None:
            attrs["maxInclusive"] = _num(high)
        _sub(ranges, tag, **attrs)
    return True


def _comparison_list(el: ET.Element, pairs: Sequence[tuple[str, int | str]]) -> None:
    crit = _sub(el, "RestrictionCriteria")
    if len(pairs) == 1:
        _sub(crit, "Comparison", parameterRef=pairs[0][0], value=str(pairs[0][1]))
        return
    lst = _sub(crit, "ComparisonList")
    for ref, value in pairs:
        _sub(lst, "Comparison", parameterRef=ref, value=str(value))


class _Builder:
    def __init__(self, d: Dictionary) -> None:
        self.d = d
        self.root = _System(ROOT, f"/{ROOT}")
        self.systems: dict[str, _System] = {}
        self.out = XtceExport(xml="")
        self.channel_refs: dict[int, str] = {}

    def system(self, component: str) -> _System:
        if component not in self.systems:
            self.systems[component] = _System(component, f"/{ROOT}/{component}")
        return self.systems[component]

    def ref(self, name: str) -> str:
        return f"/{ROOT}/{name}"

    # -- telemetry ---------------------------------------------------------------------

    def parameter(
        self,
        ss: _System,
        name: str,
        f: FieldDef,
        limits: Limits | None = None,
        description: str = "",
    ) -> str:
        """Declare parameter ``name`` of leaf type ``f`` in ``ss``; its absolute ref."""
        tname = ss.unique(f"{name}_t")
        el, alarm = _leaf_type("Parameter", f, tname, limits)
        ss.ptypes.append(el)
        attrs = {"name": name, "parameterTypeRef": tname}
        if description or f.description:
            attrs["shortDescription"] = description or f.description
        ss.params.append(ET.Element("Parameter", attrs))
        self.out.parameters += 1
        self.out.alarms += alarm
        return f"{ss.path}/{name}"

    def fields_entries(
        self, ss: _System, prefix: str, fields: Iterable[FieldDef], what: str
    ) -> list[str]:
        """Parameters for ``fields`` (arrays with their count); the refs in order. A
        field with no static form ends the list (named in ``omitted``)."""
        refs: list[str] = []
        for f in fields:
            name = f"{prefix}{f.name}"
            if f.type == "array":
                count = FieldDef(name=f"{f.name}_count", type=f.count)
                count_ref = self.parameter(ss, f"{name}_count", count)
                refs.append(count_ref)
                item_ref = self.array_item_type(ss, name, f, "Parameter")
                if item_ref is None:
                    self.out.omitted.append(
                        f"{what}: {f.name} items ({_kinds(f.items)}) after their count"
                    )
                    return refs
                tname = ss.unique(f"{name}_array_t")
                arr = _sub_array(ss.ptypes, "ArrayParameterType", tname, item_ref)
                dim = _dimension(arr)
                dyn = _sub(_sub(dim, "EndingIndex"), "DynamicValue")
                _sub(dyn, "ParameterInstanceRef", parameterRef=count_ref)
                _sub(dyn, "LinearAdjustment", intercept="-1")
                ss.params.append(ET.Element("Parameter", {"name": name, "parameterTypeRef": tname}))
                self.out.parameters += 1
                refs.append(f"{ss.path}/{name}")
            elif f.type in ("param_value", "event_args", "hk_values", "packet"):
                self.out.omitted.append(f"{what}: {f.name} ({f.type}) and what follows")
                return refs
            else:
                refs.append(self.parameter(ss, name, f))
        return refs

    def array_item_type(self, ss: _System, name: str, f: FieldDef, kind: str) -> str | None:
        """The type name of one item of array ``f`` (an aggregate for several fields);
        None when an item holds a field with no static form."""
        if any(i.type not in _LEAVES for i in f.items):
            return None
        types = ss.ptypes if kind == "Parameter" else ss.atypes
        if len(f.items) == 1:
            tname = ss.unique(f"{name}_item_t")
            types.append(_leaf_type(kind, f.items[0], tname)[0])
            return tname
        members = []
        for item in f.items:
            mname = ss.unique(f"{name}_{item.name}_t")
            types.append(_leaf_type(kind, item, mname)[0])
            members.append((item.name, mname))
        tname = ss.unique(f"{name}_item_t")
        agg = ET.Element(f"Aggregate{kind}Type", {"name": tname})
        lst = _sub(agg, "MemberList")
        for mname, mtype in members:
            _sub(lst, "Member", name=mname, typeRef=mtype)
        types.append(agg)
        return tname

    def container(
        self,
        ss: _System,
        name: str,
        refs: Sequence[str],
        base: str,
        restriction: Sequence[tuple[str, int | str]],
        description: str = "",
        abstract: bool = False,
    ) -> str:
        attrs = {"name": name}
        if description:
            attrs["shortDescription"] = description
        if abstract:
            attrs["abstract"] = "true"
        el = ET.Element("SequenceContainer", attrs)
        entries = _sub(el, "EntryList")
        for ref in refs:
            _sub(entries, "ParameterRefEntry", parameterRef=ref)
        bc = _sub(el, "BaseContainer", containerRef=base)
        if restriction:
            _comparison_list(bc, restriction)
        ss.containers.append(el)
        self.out.containers += 1
        return f"{ss.path}/{name}"

    def headers(self) -> None:
        r = self.root
        bits = {"u3": 3, "u11": 11, "u14": 14}
        for tname, size in bits.items():
            el = ET.Element("IntegerParameterType", {"name": tname, "signed": "false"})
            _sub(el, "UnitSet")
            _sub(el, "IntegerDataEncoding", sizeInBits=str(size))
            r.ptypes.append(el)
            r.unique(tname)
        for name, tname in (("ccsds_apid", "u11"), ("ccsds_seq", "u14")):
            r.params.append(ET.Element("Parameter", {"name": name, "parameterTypeRef": tname}))
        ccsds = ET.Element("SequenceContainer", {"name": "ccsds", "abstract": "true"})
        entries = _sub(ccsds, "EntryList")
        for ref, at in (("ccsds_apid", 5), ("ccsds_seq", 18)):
            e = _sub(entries, "ParameterRefEntry", parameterRef=self.ref(ref))
            loc = _sub(e, "LocationInContainerInBits", referenceLocation="containerStart")
            _sub(loc, "FixedValue").text = str(at)
        r.containers.append(ccsds)
        u8 = FieldDef(name="u8", type="u8")
        u16 = FieldDef(name="u16", type="u16")
        svc = self.parameter(r, "pus_service", u8)
        sub = self.parameter(r, "pus_subservice", u8)
        counter = self.parameter(r, "pus_msg_counter", u16)
        dest = self.parameter(r, "pus_dest_id", u16)
        obt = self.parameter(r, "pus_time", FieldDef(name="t", type="cuc"), None, "TM time (TAI)")
        pus = ET.Element("SequenceContainer", {"name": "pus_tm", "abstract": "true"})
        entries = _sub(pus, "EntryList")
        e = _sub(entries, "ParameterRefEntry", parameterRef=svc)
        loc = _sub(e, "LocationInContainerInBits", referenceLocation="containerStart")
        _sub(loc, "FixedValue").text = "56"
        for ref in (sub, counter, dest, obt):
            _sub(entries, "ParameterRefEntry", parameterRef=ref)
        _sub(pus, "BaseContainer", containerRef=self.ref("ccsds"))
        r.containers.append(pus)
        self.out.containers += 2
        self.pus_tm = self.ref("pus_tm")
        self.svc, self.sub = svc, sub

    def verification(self) -> None:
        """The PUS-1 reports: request id as APID + sequence count, failure code + text."""
        r = self.root
        ack_apid = self.ref("ack_apid")
        ack_seq = self.ref("ack_seq")
        r.params.append(ET.Element("Parameter", {"name": "ack_apid", "parameterTypeRef": "u11"}))
        r.params.append(ET.Element("Parameter", {"name": "ack_seq", "parameterTypeRef": "u14"}))
        codes = tuple((c.code, c.name) for c in self.d.failure_codes.values())
        code = self.parameter(
            r, "ack_failure_code", FieldDef(name="code", type="enum", base="u16", labels=codes)
        )
        reason = self.parameter(r, "ack_reason", FieldDef(name="reason", type="str", max_len=255))
        pus1 = ET.Element("SequenceContainer", {"name": "pus1", "abstract": "true"})
        entries = _sub(pus1, "EntryList")
        for ref, skip in ((ack_apid, 5), (ack_seq, 2)):
            e = _sub(entries, "ParameterRefEntry", parameterRef=ref)
            loc = _sub(e, "LocationInContainerInBits", referenceLocation="previousEntry")
            _sub(loc, "FixedValue").text = str(skip)
        bc = _sub(pus1, "BaseContainer", containerRef=self.pus_tm)
        _comparison_list(bc, [(self.svc, 1)])
        r.containers.append(pus1)
        self.out.containers += 1
        for name, subs, refs in (
            ("pus1_ok", (1, 3, 5, 7), ()),
            ("pus1_fail", (2, 4, 6, 8), (code, reason)),
        ):
            el = ET.Element("SequenceContainer", {"name": name})
            entries = _sub(el, "EntryList")
            for ref in refs:
                _sub(entries, "ParameterRefEntry", parameterRef=ref)
            bc = _sub(el, "BaseContainer", containerRef=self.ref("pus1"))
            ored = _sub(
                _sub(_sub(bc, "RestrictionCriteria"), "BooleanExpression"), "ORedConditions"
            )
            for value in subs:
                cond = _sub(ored, "Condition")
                _sub(cond, "ParameterInstanceRef", parameterRef=self.sub)
                _sub(cond, "ComparisonOperator").text = "=="
                _sub(cond, "Value").text = str(value)
            r.containers.append(el)
            self.out.containers += 1

    def channels(self) -> None:
        for ch in sorted(self.d.channels_by_id.values(), key=lambda c: c.id):
            self.channel_refs[ch.id] = self.channel(ch)

    def channel(self, ch: ChannelDef) -> str:
        ss = self.system(ch.component)
        return self.parameter(
            ss, _short(ch.name, ch.component), ch.field, ch.limits, ch.description
        )

    def housekeeping(self) -> None:
        hk = [r for r in self.d.reports.values() if _dynamic(r) == "hk_values"]
        if not hk:
            return
        rep = hk[0]
        sid = self.parameter(self.root, "hk_sid", rep.fields[0])
        base = self.container(
            self.root,
            "hk_report",
            [sid],
            self.pus_tm,
            self._selector(rep),
            rep.description,
            abstract=True,
        )
        for s in sorted(self.d.housekeeping.values(), key=lambda h: h.sid):
            refs = [self.channel_refs[c] for c in s.channel_ids]
            self.container(
                self.root,
                f"HK_{s.name}",
                refs,
                base,
                [(sid, s.sid)],
                f"housekeeping structure {s.sid} ({s.name}), every {s.interval_s:g} s",
            )

    def events(self) -> None:
        reports = [r for r in self.d.reports.values() if _dynamic(r) == "event_args"]
        if not reports:
            return
        apid = reports[0].apid
        svc = reports[0].service
        # The event id as an enumeration of the event names: Yamcs' PusEventDecoder
        # picks each event's message template by this label (event_templates()).
        labels = tuple(
            (ev.id, ev.name) for ev in sorted(self.d.events_by_id.values(), key=lambda e: e.id)
        )
        id_field = FieldDef(name="event_id", type="enum", base="u16", labels=labels)
        eid = self.parameter(self.root, "event_id", id_field)
        base = self.container(
            self.root,
            "pus5_event",
            [eid],
            self.pus_tm,
            [(self.ref("ccsds_apid"), apid), (self.svc, svc)],
            "an event report (5,1..4)",
            abstract=True,
        )
        for ev in sorted(self.d.events_by_id.values(), key=lambda e: e.id):
            ss = self.system(ev.component)
            short = _short(ev.name, ev.component)
            refs = self.fields_entries(ss, f"{short}_", ev.args, f"event {ev.name}")
            self.container(ss, short, refs, base, [(eid, ev.name)], f"{ev.severity}: {ev.format}")
            template = _FIELD.sub(f"{{{short}_\\1}}", ev.format)
            self.out.event_templates.append({"eventId": ev.name, "template": template})

    def param_values(self, rep: ReportDef) -> None:
        """``prm.VALUES`` about one parameter: one container per parameter."""
        ss = self.system(rep.component)
        u16 = FieldDef(name="n", type="u16")
        count = self.parameter(ss, f"{_short(rep.name, rep.component)}_count", u16)
        pid = self.parameter(ss, f"{_short(rep.name, rep.component)}_param_id", u16)
        base = self.container(
            ss,
            _short(rep.name, rep.component),
            [count, pid],
            self.pus_tm,
            self._selector(rep),
            rep.description,
            abstract=True,
        )
        for p in sorted(self.d.params_by_id.values(), key=lambda p: p.id):
            pss = self.system(p.component)
            short = _short(p.name, p.component)
            ref = self.parameter(pss, f"param_{short}", p.field, None, p.description)
            self.container(
                pss,
                f"PARAM_{short}",
                [ref],
                base,
                [(count, 1), (pid, p.id)],
                f"on-board parameter {p.name} (answer to PARAM_GET)",
            )

    def reports(self) -> None:
        for rep in sorted(self.d.reports.values(), key=lambda r: (r.service, r.subservice)):
            kind = _dynamic(rep)
            if rep.service == 1 or kind in ("hk_values", "event_args"):
                continue
            if kind == "param_value":
                self.param_values(rep)
                continue
            ss = self.system(rep.component)
            short = _short(rep.name, rep.component)
            refs = self.fields_entries(ss, f"{short}_", rep.fields, f"report {rep.name}")
            self.container(ss, short, refs, self.pus_tm, self._selector(rep), rep.description)

    def _selector(self, rep: ReportDef) -> list[tuple[str, int | str]]:
        return [
            (self.ref("ccsds_apid"), rep.apid),
            (self.svc, rep.service),
            (self.sub, rep.subservice),
        ]

    # -- commands ----------------------------------------------------------------------

    def abstract_tc(self) -> None:
        r = self.root
        for tname, size in (("u4", 4), ("u8", 8), ("u11", 11), ("u16", 16)):
            el = ET.Element("IntegerArgumentType", {"name": f"{tname}_arg", "signed": "false"})
            _sub(el, "UnitSet")
            _sub(el, "IntegerDataEncoding", sizeInBits=str(size))
            r.atypes.append(el)
            r.unique(f"{tname}_arg")
        mc = ET.Element("MetaCommand", {"name": "pus_tc", "abstract": "true"})
        args = _sub(mc, "ArgumentList")
        for name, tname, initial in (
            ("apid", "u11_arg", None),
            ("ack_flags", "u4_arg", "15"),
            ("service", "u8_arg", None),
            ("subservice", "u8_arg", None),
            ("source_id", "u16_arg", "0"),
        ):
            attrs = {"name": name, "argumentTypeRef": tname}
            if initial is not None:
                attrs["initialValue"] = initial
            _sub(args, "Argument", **attrs)
        cc = _sub(mc, "CommandContainer", name="pus_tc")
        entries = _sub(cc, "EntryList")
        for name, value, bits in (
            ("ccsds_version", "00", 3),
            ("ccsds_type", "01", 1),
            ("ccsds_sec_hdr", "01", 1),
        ):
            _sub(entries, "FixedValueEntry", name=name, binaryValue=value, sizeInBits=str(bits))
        _sub(entries, "ArgumentRefEntry", argumentRef="apid")
        for name, value, bits in (
            ("ccsds_seq_flags", "03", 2),
            ("ccsds_seq", "0000", 14),
            ("ccsds_length", "0000", 16),
            ("pus_version", "02", 4),
        ):
            _sub(entries, "FixedValueEntry", name=name, binaryValue=value, sizeInBits=str(bits))
        for name in ("ack_flags", "service", "subservice", "source_id"):
            _sub(entries, "ArgumentRefEntry", argumentRef=name)
        vs = _sub(mc, "VerifierSet")
        for tag, name, stage, fail_sub, window in _VERIFIERS:
            v = _sub(vs, tag, name=name)
            alg = _sub(v, "CustomAlgorithm", name=f"verify_{name.lower()}")
            _sub(alg, "AlgorithmText", language="java").text = (
                f'org.yamcs.pus.Pus1Verifier({{stage: {stage}, template: "(1,{fail_sub}) '
                '{code}: {reason}"})'
            )
            inputs = _sub(alg, "InputSet")
            for ref, input_name in (
                ("/yamcs/cmd/arg/apid", "sentApid"),
                ("/yamcs/cmdHist/ccsds-seqcount", "sentSeq"),
                (self.ref("ack_apid"), "rcvdApid"),
                (self.ref("ack_seq"), "rcvdSeq"),
                (self.sub, "subtype"),
                (self.ref("ack_failure_code"), "code"),
                (self.ref("ack_reason"), "reason"),
            ):
                _sub(inputs, "InputParameterInstanceRef", parameterRef=ref, inputName=input_name)
            _sub(
                v,
                "CheckWindow",
                timeToStopChecking=window,
                timeWindowIsRelativeTo="commandRelease",
            )
        r.commands.append(mc)
        self.out.commands += 0  # abstract: not a command an operator sends

    def command(
        self,
        cmd: CommandDef,
        name: str | None = None,
        fixed: Sequence[tuple[str, str, int]] = (),
        fields: Sequence[FieldDef] | None = None,
        description: str = "",
    ) -> None:
        """One MetaCommand. ``fixed`` entries (name, hex, bits) go before ``fields``."""
        ss = self.system(cmd.component)
        short = name or _short(cmd.name, cmd.component)
        attrs = {"name": short}
        if description or cmd.description:
            attrs["shortDescription"] = description or cmd.description
        mc = ET.Element("MetaCommand", attrs)
        base = _sub(mc, "BaseMetaCommand", metaCommandRef=self.ref("pus_tc"))
        assign = _sub(base, "ArgumentAssignmentList")
        for arg, value in (
            ("apid", self.d.tc_apid),
            ("service", cmd.service),
            ("subservice", cmd.subservice),
        ):
            _sub(assign, "ArgumentAssignment", argumentName=arg, argumentValue=str(value))
        args_el = ET.Element("ArgumentList")
        cc = ET.Element("CommandContainer", {"name": short})
        entries = _sub(cc, "EntryList")
        if cmd.function_id is not None:
            _sub(
                entries,
                "FixedValueEntry",
                name="function_id",
                binaryValue=f"{cmd.function_id:04x}",
                sizeInBits="16",
            )
        for fname, hex_value, bits in fixed:
            _sub(
                entries, "FixedValueEntry", name=fname, binaryValue=hex_value, sizeInBits=str(bits)
            )
        for f in cmd.args if fields is None else fields:
            tprefix = f"{short}_{f.name}"
            if f.type == "array":
                count_t = ss.unique(f"{tprefix}_count_t")
                ss.atypes.append(
                    _leaf_type("Argument", FieldDef(name="count", type=f.count), count_t)[0]
                )
                _sub(args_el, "Argument", name=f"{f.name}_count", argumentTypeRef=count_t)
                item_t = self.array_item_type(ss, tprefix, f, "Argument")
                if item_t is None:
                    raise XtceError(f"{cmd.name}: {f.name} has no XTCE form")
                arr_t = ss.unique(f"{tprefix}_array_t")
                arr = _sub_array(ss.atypes, "ArrayArgumentType", arr_t, item_t)
                dyn = _sub(_sub(_dimension(arr), "EndingIndex"), "DynamicValue")
                _sub(dyn, "ArgumentInstanceRef", argumentRef=f"{f.name}_count")
                _sub(dyn, "LinearAdjustment", intercept="-1")
                _sub(args_el, "Argument", name=f.name, argumentTypeRef=arr_t)
                _sub(entries, "ArgumentRefEntry", argumentRef=f"{f.name}_count")
            else:
                tname = ss.unique(f"{tprefix}_t")
                ss.atypes.append(_leaf_type("Argument", f, tname)[0])
                _sub(args_el, "Argument", name=f.name, argumentTypeRef=tname)
            _sub(entries, "ArgumentRefEntry", argumentRef=f.name)
        if len(args_el):
            mc.append(args_el)
        _sub(cc, "BaseContainer", containerRef=self.ref("pus_tc"))
        mc.append(cc)
        ss.commands.append(mc)
        self.out.commands += 1

    def commands(self) -> None:
        for cmd in self.d.commands.values():
            kinds = _arg_kinds(cmd.args)
            if "param_value" in kinds:
                self.param_set(cmd)
            elif kinds & {"packet", "event_args", "hk_values"}:
                self.out.omitted.append(
                    f"command {cmd.name} (nested TC packets; Yamcs time-tags a TC with "
                    "the pus11ScheduleAt option)"
                )
            else:
                self.command(cmd)

    def param_set(self, cmd: CommandDef) -> None:
        """PARAM_SET as one command per on-board parameter (count 1, the id fixed)."""
        for p in sorted(self.d.params_by_id.values(), key=lambda p: p.id):
            short = _short(p.name, p.component)
            value = FieldDef(
                name="value",
                type=p.field.type,
                min=p.field.min,
                max=p.field.max,
                units=p.field.units,
                description=p.description,
                base=p.field.base,
                labels=p.field.labels,
                max_len=p.field.max_len,
            )
            moved = CommandDef(
                name=cmd.name,
                component=p.component,
                service=cmd.service,
                subservice=cmd.subservice,
                function_id=cmd.function_id,
                args=(),
            )
            self.command(
                moved,
                name=f"SET_PARAM_{short}",
                fixed=(("count", "0001", 16), ("param_id", f"{p.id:04x}", 16)),
                fields=(value,),
                description=f"{cmd.name} of {p.name}: {p.description}",
            )

    def build(self) -> XtceExport:
        self.headers()
        self.verification()
        self.channels()
        self.housekeeping()
        self.events()
        self.reports()
        self.abstract_tc()
        self.commands()
        software = self.d.doc.get("software", {})
        root = self.root.element(
            f"{software.get('name', 'gnomon')} {software.get('version', '')} flight "
            f"dictionary {self.d.content_hash}".strip()
        )
        root.set("xmlns", NAMESPACE)
        for name in sorted(self.systems):
            root.append(self.systems[name].element())
        ET.indent(root, space="  ")
        body = ET.tostring(root, encoding="unicode")
        self.out.xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            "<!-- Generated by gnomon (dict export, format xtce) from the flight dictionary "
            f"{self.d.content_hash}. Do not edit. -->\n{body}\n"
        )
        return self.out


_LEAVES = ("u8", "u16", "u32", "i8", "i16", "i32", "f32", "f64", "bool", "enum", "str", "cuc")


def _kinds(items: Iterable[FieldDef]) -> str:
    return ", ".join(sorted({i.type for i in items if i.type not in _LEAVES}))


def _arg_kinds(fields: Iterable[FieldDef]) -> set[str]:
    out: set[str] = set()
    for f in fields:
        out.add(f.type)
        out |= _arg_kinds(f.items)
    return out


def _dynamic(rep: ReportDef) -> str:
    """The dynamic type (hk_values, event_args, param_value) a report carries, or ""."""
    kinds = _arg_kinds(rep.fields)
    for kind in ("hk_values", "event_args", "param_value"):
        if kind in kinds:
            return kind
    return ""


def _sub_array(types: list[ET.Element], tag: str, name: str, item: str) -> ET.Element:
    el = ET.Element(tag, {"name": name, "arrayTypeRef": item})
    types.append(el)
    return el


def _dimension(arr: ET.Element) -> ET.Element:
    dim = _sub(_sub(arr, "DimensionList"), "Dimension")
    _sub(_sub(dim, "StartingIndex"), "FixedValue").text = "0"
    return dim


def to_xtce(d: Dictionary) -> XtceExport:
    """The XTCE 1.2 document of dictionary ``d`` (raises :class:`XtceError` on a field
    type it does not know)."""
    return _Builder(d).build()


__all__ = ["NAMESPACE", "ROOT", "XtceError", "XtceExport", "to_xtce"]
