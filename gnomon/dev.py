"""``gnomon dev``: checks for the people who work on Gnomon (not needed to fly it).

>>> from typer.testing import CliRunner
>>> "reqs" in CliRunner().invoke(dev_app, ["--help"]).output
True
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gnomon.clikit import emit_json, examples, fail
from gnomon.reqs import DOCS_DIR, REPO_ROOT, TESTS_DIR, trace

dev_app = typer.Typer(
    help="Developer checks: requirement traceability.",
    no_args_is_help=True,
    add_completion=False,
)


@dev_app.callback()
def dev_callback() -> None:
    """Developer checks: requirement traceability."""


@dev_app.command(
    "reqs",
    epilog=examples("gnomon dev reqs", "gnomon dev reqs --json"),
)
def reqs_command(
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON only.")
    ] = False,
    root: Annotated[
        Path, typer.Option(help="Repository root holding docs/components/ and tests/.")
    ] = REPO_ROOT,
) -> None:
    """Every requirement of docs/components/*.md with the tests that verify it (the
    ``@pytest.mark.req`` markers). Exits 1 if a requirement has no test or a marker names
    an id no table defines."""
    if not (root / DOCS_DIR).is_dir() or not (root / TESTS_DIR).is_dir():
        fail(f"{root} has no {DOCS_DIR}/ or {TESTS_DIR}/: pass the repository root with --root")
    report = trace(root)
    if json_out:
        emit_json(report.to_json(), indent=2)
        raise typer.Exit(code=0 if report.ok else 1)
    for r in report.requirements:
        tests = report.tests[r.id]
        typer.echo(f"{r.id}  {r.text}  [{r.verification}]")
        for t in tests:
            typer.echo(f"    {t}")
        if not tests:
            typer.echo("    (no test)")
    n_links = sum(len(t) for t in report.tests.values())
    docs = len({r.doc for r in report.requirements})
    typer.echo(f"{len(report.requirements)} requirements in {docs} documents, {n_links} test links")
    for rid in report.untested:
        r = next(x for x in report.requirements if x.id == rid)
        typer.echo(f"error: {rid} ({r.doc}:{r.line}) has no test marked req({rid!r})", err=True)
    for m in report.unknown:
        typer.echo(f"error: {m.test} marks req({m.req_id!r}), which no table defines", err=True)
    for p in report.problems:
        typer.echo(f"error: {p}", err=True)
    if not report.ok:
        raise typer.Exit(code=1)


__all__ = ["dev_app"]
