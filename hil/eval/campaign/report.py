"""``gnomon campaign report DIR``: one HTML page over a campaign's results table.

For every headline figure some run has (:data:`~hil.eval.campaign.runs.HEADLINE`: value
delivered per orbit, floor violations, min SoC, SEU injected/detected/repaired, commands
completed, files delivered...), a histogram of its distribution over the runs, grouped
by kind of run; then, for each figure with a worse direction, the worst runs with the
exact command that replays each; the failed runs with their error; and, when the
campaign flew constellations, the value delivered per day against the number of
satellites (the mean over seeds, one line per station count). Plots are PNG files beside
``report.html`` and inlined into it. :func:`campaign_report_doc` is the same content as
data (``--json``).

>>> # write_campaign_report(Path("out/seeds-200"))   # -> {"report": ".../report.html", ...}
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from hil.eval.campaign.runs import HEADLINE
from hil.eval.campaign.store import CampaignStoreError, ResultStore

REPORT = "report.html"
_LABELS = {
    "value_per_orbit": "value delivered per orbit",
    "value_vs_oracle": "value vs the oracle",
    "value_per_day": "value delivered per day",
    "floor_violations": "floor violations",
    "min_soc": "minimum state of charge",
    "seu_injected": "SEUs injected",
    "seu_detected": "SEUs detected",
    "seu_missed": "SEUs missed",
    "seu_repaired": "SEUs repaired",
    "commands_sent": "commands sent",
    "commands_completed": "commands completed",
    "commands_not_completed": "commands not completed",
    "files_delivered": "files delivered",
    "satellites": "satellites",
    "station_conflicts": "station conflicts",
}


def _rows(out_dir: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    path = out_dir / "campaign.sqlite"
    if not path.exists():
        raise CampaignStoreError(f"no campaign results at {path} (run gnomon campaign run first)")
    with ResultStore(path, create=False) as store:
        return store.rows(), store.meta()


def _worst(rows: list[dict[str, Any]], name: str, n: int) -> list[dict[str, Any]]:
    sign = HEADLINE[name]
    have = [r for r in rows if r["status"] == "ok" and r[name] is not None]
    if sign == 0 or not have:
        return []
    # worst first; ties broken by seed then run id, so the list is the same every time
    ranked = sorted(have, key=lambda r: (sign * -float(r[name]), r["seed"], r["run_id"]))
    return [
        {
            "run_id": r["run_id"],
            "kind": r["kind"],
            "seed": r["seed"],
            "params": json.loads(r["params"]),
            "value": r[name],
            "replay": r["replay"],
        }
        for r in ranked[:n]
    ]


def _curve(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Constellation runs: mean value per day by (stations, satellites), over seeds."""
    groups: dict[tuple[int, int], list[float]] = defaultdict(list)
    for r in rows:
        if r["kind"] != "constellation" or r["status"] != "ok" or r["value_per_day"] is None:
            continue
        summary = json.loads(r["summary"])
        key = (int(summary["stations"]["count"]), int(summary["satellites"]))
        groups[key].append(float(r["value_per_day"]))
    return [
        {
            "stations": st,
            "satellites": n,
            "runs": len(v),
            "value_per_day": round(sum(v) / len(v), 3),
            "value_per_satellite_day": round(sum(v) / len(v) / n, 3),
        }
        for (st, n), v in sorted(groups.items())
    ]


def campaign_report_doc(out_dir: Path, worst: int = 5) -> dict[str, Any]:
    """The report's content as data: counts, per-figure statistics, worst runs, failures,
    the value-per-day curve."""
    rows, meta = _rows(out_dir)
    ok = [r for r in rows if r["status"] == "ok"]
    figures: dict[str, dict[str, Any]] = {}
    for name in HEADLINE:
        values = [float(r[name]) for r in ok if r[name] is not None]
        if not values:
            continue
        values.sort()
        figures[name] = {
            "runs": len(values),
            "min": values[0],
            "median": values[len(values) // 2],
            "mean": round(sum(values) / len(values), 6),
            "max": values[-1],
            # a figure every run shares has no worst runs to show
            "worst": _worst(rows, name, worst) if values[0] != values[-1] else [],
        }
    failed = [
        {"run_id": r["run_id"], "error": r["error"], "replay": r["replay"]}
        for r in rows
        if r["status"] != "ok"
    ]
    return {
        "out": str(out_dir),
        "runs": len(rows),
        "ok": len(ok),
        "failed": len(failed),
        "kinds": dict(
            sorted(
                {k: sum(r["kind"] == k for r in rows) for k in {r["kind"] for r in rows}}.items()
            )
        ),
        "code_versions": sorted({str(r["code_version"]) for r in rows}),
        "last_spec": meta.get("last_spec"),
        "figures": figures,
        "failures": failed,
        "value_per_day_curve": _curve(rows),
    }


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _plots(rows: list[dict[str, Any]], doc: dict[str, Any]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    out: dict[str, bytes] = {}
    ok = [r for r in rows if r["status"] == "ok"]
    for name in doc["figures"]:
        fig = Figure(figsize=(5.0, 3.0))
        ax = fig.add_subplot()
        for kind in sorted({r["kind"] for r in ok}):
            vals = [float(r[name]) for r in ok if r["kind"] == kind and r[name] is not None]
            if vals:
                ax.hist(vals, bins=min(30, max(5, len(set(vals)))), alpha=0.7, label=kind)
        ax.set_xlabel(_LABELS.get(name, name))
        ax.set_ylabel("runs")
        ax.legend(fontsize=8)
        fig.tight_layout()
        out[f"{name}.png"] = _png(fig)
    curve = doc["value_per_day_curve"]
    if curve:
        fig = Figure(figsize=(6.0, 3.6))
        ax = fig.add_subplot()
        for st in sorted({c["stations"] for c in curve}):
            pts = [c for c in curve if c["stations"] == st]
            ax.plot(
                [c["satellites"] for c in pts],
                [c["value_per_day"] for c in pts],
                marker="o",
                label=f"{st} station(s)",
            )
        ax.set_xlabel("satellites")
        ax.set_ylabel("value delivered per day")
        ax.set_title("Constellation: value per day vs satellites")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out["value_per_day_curve.png"] = _png(fig)
    return out


def _html(doc: dict[str, Any], plots: dict[str, bytes]) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Campaign report: {esc(doc['out'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
        "font-size:90%}code{font-size:85%}img{max-width:48%}</style></head><body>",
        f"<h1>Campaign report: {esc(doc['out'])}</h1>",
        f"<p>{doc['runs']} runs ({doc['ok']} ok, {doc['failed']} failed); kinds: "
        f"{esc(', '.join(f'{k} {n}' for k, n in doc['kinds'].items()))}; code: "
        f"{esc('; '.join(doc['code_versions']))}</p>",
    ]
    if "value_per_day_curve.png" in plots:
        b64 = base64.b64encode(plots["value_per_day_curve.png"]).decode("ascii")
        parts.append("<h2>Constellation: value delivered per day vs satellites</h2>")
        parts.append(f"<img style='max-width:70%' src='data:image/png;base64,{b64}'>")
        parts.append(
            "<table><tr><th>stations</th><th>satellites</th><th>runs</th>"
            "<th>value / day</th><th>value / satellite / day</th></tr>"
        )
        for c in doc["value_per_day_curve"]:
            parts.append(
                f"<tr><td>{c['stations']}</td><td>{c['satellites']}</td><td>{c['runs']}</td>"
                f"<td>{c['value_per_day']}</td><td>{c['value_per_satellite_day']}</td></tr>"
            )
        parts.append("</table>")
    parts.append(
        "<h2>Distributions</h2><table><tr><th>figure</th><th>runs</th><th>min</th>"
        "<th>median</th><th>mean</th><th>max</th></tr>"
    )
    for name, f in doc["figures"].items():
        parts.append(
            f"<tr><td>{esc(_LABELS.get(name, name))}</td><td>{f['runs']}</td><td>{f['min']:g}"
            f"</td><td>{f['median']:g}</td><td>{f['mean']:g}</td><td>{f['max']:g}</td></tr>"
        )
    parts.append("</table><div>")
    for name in doc["figures"]:
        b64 = base64.b64encode(plots[f"{name}.png"]).decode("ascii")
        parts.append(f"<img src='data:image/png;base64,{b64}' alt='{esc(name)}'>")
    parts.append("</div><h2>Worst runs (the command replays each)</h2>")
    for name, f in doc["figures"].items():
        if not f["worst"]:
            continue
        direction = "lowest" if HEADLINE[name] < 0 else "highest"
        parts.append(
            f"<h3>{esc(_LABELS.get(name, name))} ({direction} first)</h3><table>"
            "<tr><th>value</th><th>seed</th><th>params</th><th>replay</th></tr>"
        )
        for w in f["worst"]:
            parts.append(
                f"<tr><td>{w['value']:g}</td><td>{w['seed']}</td>"
                f"<td>{esc(json.dumps(w['params']))}</td><td><code>{esc(w['replay'])}</code>"
                "</td></tr>"
            )
        parts.append("</table>")
    parts.append(f"<h2>Failed runs ({doc['failed']})</h2>")
    if doc["failures"]:
        parts.append("<table><tr><th>run</th><th>error</th><th>replay</th></tr>")
        for f in doc["failures"]:
            parts.append(
                f"<tr><td>{esc(f['run_id'])}</td><td>{esc(str(f['error']))}</td>"
                f"<td><code>{esc(f['replay'])}</code></td></tr>"
            )
        parts.append(
            '</table><p>Tracebacks: <code>sqlite3 campaign.sqlite "select run_id, '
            "traceback from runs where status='failed'\"</code></p>"
        )
    else:
        parts.append("<p>none</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_campaign_report(out_dir: Path, worst: int = 5) -> dict[str, Any]:
    """Write ``out_dir/report.html`` (and the PNG plots beside it); the report as data
    plus ``report`` (its path)."""
    out_dir = Path(out_dir)
    rows, _ = _rows(out_dir)
    doc = campaign_report_doc(out_dir, worst)
    plots = _plots(rows, doc)
    for name, data in plots.items():
        (out_dir / name).write_bytes(data)
    path = out_dir / REPORT
    path.write_text(_html(doc, plots), encoding="utf-8")
    doc["report"] = str(path)
    doc["plots"] = sorted(plots)
    return doc


__all__ = ["REPORT", "campaign_report_doc", "write_campaign_report"]
