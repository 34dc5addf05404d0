"""Component design notes from the dictionary: developer tooling behind ``gnomon dict docs``.

Each ``docs/components/<name>.md`` ends in a block generated from the exported
dictionary (the dict :func:`fsw.core.dictionary.build_dictionary` returns, or the JSON
``gnomon dict export`` prints): the component's commands, telemetry, events, parameters
and reports. Nothing here reads flight code; it works from the dictionary alone, and a
test fails when a note is stale.

>>> d = {
...     "components": [
...         {"name": "heater", "id": 16, "class": "Heater", "rate_groups": ["1Hz"],
...          "hk_interval_s": 10.0, "description": "Keeps the battery warm."}
...     ],
...     "commands": [], "telemetry": [], "events": [], "parameters": [], "reports": [],
... }
>>> facts = component_facts(d, "heater")
>>> facts.splitlines()[2]
'Component id 16 (`Heater`), rate groups: 1Hz, default HK report every 10 s (sid 272).'
>>> doc = update_doc("# `heater`\\n", facts)
>>> generated_block(doc) == facts
True
>>> update_doc(doc, facts) == doc
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gnomon.clikit import examples, fail

BEGIN = "<!-- BEGIN GENERATED: gnomon dict docs -->"
END = "<!-- END GENERATED -->"
#: Housekeeping sid of a component's default report: 256 + component id.
_COMPONENT_SID_BASE = 0x100

_INT_TYPES = ("u8", "u16", "u32", "i8", "i16", "i32")


def _natural(t: str) -> tuple[int, int]:
    bits = int(t[1:])
    return (0, (1 << bits) - 1) if t[0] == "u" else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _field_text(f: dict[str, Any]) -> str:
    t = f["type"]
    if t == "array":
        return f"{f['name']}[{f['count']}]({args_text(f['items'])})"
    if t in ("param_value", "event_args", "hk_values"):
        return f"{f['name']}: {t} of {f['ref']}"
    desc = f"{f['name']}: {t}"
    if t == "enum":
        desc += "{" + "/".join(lab["label"] for lab in f["labels"]) + "}"
    if t == "str":
        desc += f"<={f['max_len']}"
    lo, hi = f.get("min"), f.get("max")
    if t.startswith("f") and (lo is not None or hi is not None):
        desc += f" [{lo}..{hi}]"
    elif t in _INT_TYPES and "min" in f:
        desc += f" [{lo}..{hi}]" if (lo, hi) != _natural(t) else ""
    if f.get("units"):
        desc += f" {f['units']}"
    return desc


def args_text(fields: list[dict[str, Any]]) -> str:
    """One line for a list of dictionary fields (``-`` for none).

    >>> args_text([{"name": "on", "type": "bool"}, {"name": "gain", "type": "f32",
    ...            "min": 0.0, "max": 10.0, "units": "dB"}])
    'on: bool, gain: f32 [0.0..10.0] dB'
    """
    return ", ".join(_field_text(f) for f in fields) if fields else "-"


def _commands_table(d: dict[str, Any], name: str) -> list[str]:
    lines = [
        "### Commands",
        "",
        "| name | service | function id | arguments | description |",
        "|---|---|---|---|---|",
    ]
    for c in (c for c in d["commands"] if c["component"] == name):
        fid = f"0x{c['function_id']:04X}" if c["function_id"] is not None else "-"
        safe = "" if c["allowed_in_safe"] else " (refused in SAFE)"
        lines.append(
            f"| `{c['name']}` | ({c['service']},{c['subservice']}) | {fid} | "
            f"{args_text(c['args'])} | {c['description']}{safe} |"
        )
    return lines


def _telemetry_table(d: dict[str, Any], name: str) -> list[str]:
    lines = [
        "### Telemetry",
        "",
        "| channel | id | type | units | description |",
        "|---|---|---|---|---|",
    ]
    for t in (t for t in d["telemetry"] if t["component"] == name):
        ty = t["type"]
        if ty == "enum":
            ty += "{" + "/".join(lab["label"] for lab in t["labels"]) + "}"
        lines.append(
            f"| `{t['name']}` | 0x{t['id']:04X} | {ty} | {t['units'] or '-'} | {t['description']} |"
        )
    return lines


def _events_table(d: dict[str, Any], name: str) -> list[str]:
    evs = [e for e in d["events"] if e["component"] == name]
    if not evs:
        return ["### Events", "", "None."]
    return [
        "### Events",
        "",
        "| event | id | severity | text |",
        "|---|---|---|---|",
        *(
            f"| `{e['name']}` | 0x{e['id']:04X} | {e['severity']} | "
            f"{e['format'].replace('|', '/')} |"
            for e in evs
        ),
    ]


def _parameters_table(d: dict[str, Any], name: str) -> list[str]:
    prms = [p for p in d["parameters"] if p["component"] == name]
    if not prms:
        return ["### Parameters", "", "None."]
    return [
        "### Parameters",
        "",
        "| parameter | id | type | min | max | default |",
        "|---|---|---|---|---|---|",
        *(
            f"| `{p['name']}` | 0x{p['id']:04X} | {p['type']} | {p.get('min')} | "
            f"{p.get('max')} | {p['default']} |"
            for p in prms
        ),
    ]


def _reports_table(d: dict[str, Any], name: str) -> list[str]:
    reps = [r for r in d["reports"] if r["component"] == name]
    if not reps:
        return []
    return [
        "",
        "### Reports (TM)",
        "",
        "| report | service | APID | fields |",
        "|---|---|---|---|",
        *(
            f"| `{r['name']}` | ({r['service']},{r['subservice']}) | {r['apid']} | "
            f"{args_text(r['fields'])} |"
            for r in reps
        ),
    ]


def component_facts(d: dict[str, Any], name: str) -> str:
    """Markdown tables of one component's commands, telemetry, events, parameters and
    reports, from a dictionary (the generated block of ``docs/components/<name>.md``).

    ``KeyError`` if the dictionary has no component ``name``.
    """
    comp = next((c for c in d["components"] if c["name"] == name), None)
    if comp is None:
        raise KeyError(name)
    lines = [
        BEGIN,
        "",
        f"Component id {comp['id']} (`{comp['class']}`), rate groups: "
        f"{', '.join(comp['rate_groups']) or 'none'}, default HK report every "
        f"{comp['hk_interval_s']:g} s (sid {_COMPONENT_SID_BASE + comp['id']}).",
        "",
        *_commands_table(d, name),
        "",
        *_telemetry_table(d, name),
        "",
        *_events_table(d, name),
        "",
        *_parameters_table(d, name),
        *_reports_table(d, name),
        "",
        END,
    ]
    return "\n".join(lines)


def update_doc(text: str, facts: str) -> str:
    """Replace the generated block of a component doc (append one if missing)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        return head + facts + tail
    return text.rstrip("\n") + "\n\n## Generated facts\n\n" + facts + "\n"


def generated_block(text: str) -> str | None:
    """The generated block inside a component doc, or None."""
    if BEGIN not in text or END not in text:
        return None
    _, rest = text.split(BEGIN, 1)
    body, _ = rest.split(END, 1)
    return BEGIN + body + END


def stale_docs(d: dict[str, Any], directory: Path, *, write: bool) -> list[Path]:
    """The component docs in ``directory`` whose generated block differs from ``d``;
    with ``write`` they are rewritten (a missing doc is created with a title).

    ``OSError`` if one cannot be written.
    """
    stale: list[Path] = []
    for comp in d["components"]:
        path = directory / f"{comp['name']}.md"
        old = (
            path.read_text(encoding="utf-8")
            if path.exists()
            else f"# `{comp['name']}`: {comp['description']}\n"
        )
        new = update_doc(old, component_facts(d, comp["name"]))
        if new == old:
            continue
        stale.append(path)
        if write:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new, encoding="utf-8")
    return stale


def _load_dictionary(path: Path | None) -> dict[str, Any]:
    if path is None:
        from fsw.app import build_flight
        from fsw.core.dictionary import build_dictionary

        return build_dictionary(build_flight())
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}")
    except ValueError as exc:
        fail(f"{path} is not JSON: {exc}")
    if not isinstance(doc, dict) or doc.get("schema") != "gnomon-dictionary":
        fail(f"{path} is not a gnomon dictionary (export one with `gnomon dict export`)")
    return doc


def dict_docs(
    directory: Annotated[Path, typer.Option("--dir", help="Component docs directory.")] = Path(
        "docs/components"
    ),
    check: Annotated[bool, typer.Option(help="Only check; exit 1 if a doc is stale.")] = False,
    dictionary: Annotated[
        Path | None,
        typer.Option(
            "--dictionary",
            help="An exported dictionary (JSON). Default: the default flight topology's.",
        ),
    ] = None,
) -> None:
    """Regenerate the facts block (commands, telemetry, events, parameters) of every
    ``docs/components/<name>.md`` from the dictionary, or check that they match."""
    d = _load_dictionary(dictionary)
    try:
        stale = stale_docs(d, directory, write=not check)
    except OSError as exc:
        fail(f"cannot write {exc.filename}: {exc.strerror}")
    names = ", ".join(str(p) for p in stale)
    if check and stale:
        typer.echo(f"stale component docs (run `gnomon dict docs`): {names}", err=True)
        raise typer.Exit(code=1)
    typer.echo(f"component docs {'updated: ' + names if stale else 'up to date'}", err=True)


#: The help epilog of ``gnomon dict docs``.
DICT_DOCS_EXAMPLES = examples(
    "gnomon dict docs",
    "gnomon dict docs --check",
    "gnomon dict export -o out/dict.json && gnomon dict docs --dictionary out/dict.json",
)

__all__ = [
    "BEGIN",
    "DICT_DOCS_EXAMPLES",
    "END",
    "args_text",
    "component_facts",
    "dict_docs",
    "generated_block",
    "stale_docs",
    "update_doc",
]
