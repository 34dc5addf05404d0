"""What every ``gnomon`` command shares: one way to fail, show examples and print JSON.

Each package keeps its own ``cli.py`` (the flight's in ``fsw/cli.py``, the ground's in
``ground/cli.py``, ...); they all take these helpers from here. This module imports
nothing of Gnomon's and nothing heavier than typer, so the flight's CLI may use it
(the one import from ``fsw`` into ``gnomon`` that the layering rules allow).

>>> examples("gnomon sitl", "gnomon sitl --orbits 1")
'Examples:\\n\\n  gnomon sitl\\n\\n  gnomon sitl --orbits 1'
>>> import typer
>>> try:
...     fail("no such scenario 'x'")
... except typer.Exit as exc:
...     exc.exit_code
2
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import typer

#: Exit code of a refused command (bad argument, missing file): the user can fix it.
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: <message>`` on stderr and end the command with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=code)


def examples(*lines: str) -> str:
    """A command's help epilog: one example per paragraph (typer joins plain lines)."""
    return (
        "Example"
        + ("s" if len(lines) > 1 else "")
        + ":\n\n"
        + "\n\n".join(f"  {line}" for line in lines)
    )


def emit_json(
    obj: Any, *, indent: int | None = None, default: Callable[[Any], Any] | None = None
) -> None:
    """Print ``obj`` as one JSON document on stdout (the only thing ``--json`` prints).

    ``default`` turns what JSON cannot hold into something it can (e.g. ``str``).

    >>> emit_json({"ok": True, "at": b"x"}, default=str)
    {"ok": true, "at": "b'x'"}
    """
    sys.stdout.write(json.dumps(obj, indent=indent, sort_keys=False, default=default) + "\n")
    sys.stdout.flush()


#: Gnomon's own top-level packages; any other missing module comes from a pip extra.
FIRST_PARTY = ("fsw", "ground", "hil", "models", "benchmarks", "gnomon")


def missing_third_party(exc: ModuleNotFoundError) -> str | None:
    """The third-party top-level module whose absence raised ``exc`` (None: Gnomon's own).

    >>> missing_third_party(ModuleNotFoundError("no rich", name="rich.console"))
    'rich'
    >>> missing_third_party(ModuleNotFoundError("no x", name="ground.x")) is None
    True
    """
    root = (exc.name or "").partition(".")[0]
    return root if root and root not in FIRST_PARTY else None


def fail_needs_extra(command: str, extra: str, missing: str | None = None) -> NoReturn:
    """End ``gnomon <command>`` because the pip extra it needs is not installed.

    >>> try:
    ...     fail_needs_extra("ground", "ground")
    ... except typer.Exit as exc:
    ...     exc.exit_code
    2
    """
    why = f" ({missing} is missing)" if missing else ""
    fail(f"gnomon {command} needs the '{extra}' extra{why}: pip install 'gnomon[{extra}]'")


__all__ = [
    "EXIT_USAGE",
    "FIRST_PARTY",
    "emit_json",
    "examples",
    "fail",
    "fail_needs_extra",
    "missing_third_party",
]
