"""Requirements you can trace: the tables in ``docs/components/*.md`` and the tests that
verify them (F Prime's ``sdd.md`` requirement lists, checked like cFS's).

Each component note holds one table ``| id | requirement | verification |``; each test
that verifies a requirement says so with ``@pytest.mark.req("CMD-003", ...)``. This
module reads both without running anything: the notes as Markdown, the tests as Python
syntax trees (never imported), and reports every requirement with its tests, the
requirements nothing verifies and the markers that name an id no table defines.
``gnomon dev reqs`` prints the report and fails when it finds either.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "docs" / "components").mkdir(parents=True)
>>> _ = (root / "docs" / "components" / "lamp.md").write_text(
...     "# lamp\\n\\n| id | requirement | verification |\\n|---|---|---|\\n"
...     "| LMP-001 | The lamp shall light. | Unit test |\\n"
...     "| LMP-002 | The lamp shall dim. | Unit test |\\n")
>>> (root / "tests").mkdir()
>>> _ = (root / "tests" / "test_lamp.py").write_text(
...     "import pytest\\n\\n@pytest.mark.req('LMP-001')\\ndef test_it_lights():\\n    pass\\n")
>>> report = trace(root)
>>> report.tests["LMP-001"]
('tests/test_lamp.py::test_it_lights',)
>>> report.untested, report.ok
(('LMP-002',), False)
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The repository this module belongs to (``gnomon/..``).
REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where the requirement tables live, relative to the root.
DOCS_DIR = Path("docs") / "components"
#: Where the tests live, relative to the root.
TESTS_DIR = Path("tests")
#: A requirement id: a component prefix, a dash, three digits (``CMD-003``, ``PSCH-010``).
REQ_ID = re.compile(r"^[A-Z][A-Z0-9]*-\d{3}$")

_HEADER = ("id", "requirement", "verification")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One row of a requirement table."""

    id: str
    text: str
    verification: str
    doc: str  # path relative to the root, e.g. "docs/components/cmd.md"
    line: int


@dataclass(frozen=True, slots=True)
class Marker:
    """One ``req`` marker on one test: the id it names and where it stands."""

    req_id: str
    test: str  # "tests/test_x.py::test_name" (or "...::TestClass::test_name")
    line: int


@dataclass(frozen=True, slots=True)
class TraceReport:
    """Every requirement with its tests, and what does not add up."""

    requirements: tuple[Requirement, ...]
    markers: tuple[Marker, ...]
    #: Problems with the sources themselves: a malformed row, a bad or duplicate id, a
    #: marker whose argument is not a literal string.
    problems: tuple[str, ...] = ()
    tests: dict[str, tuple[str, ...]] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[str, list[str]] = {r.id: [] for r in self.requirements}
        for m in self.markers:
            if m.req_id in by_id and m.test not in by_id[m.req_id]:
                by_id[m.req_id].append(m.test)
        object.__setattr__(self, "tests", {k: tuple(v) for k, v in by_id.items()})

    @property
    def untested(self) -> tuple[str, ...]:
        """Ids of requirements no test verifies."""
        return tuple(r.id for r in self.requirements if not self.tests[r.id])

    @property
    def unknown(self) -> tuple[Marker, ...]:
        """Markers naming an id that no requirement table defines."""
        return tuple(m for m in self.markers if m.req_id not in self.tests)

    @property
    def ok(self) -> bool:
        """True when every requirement has a test and every marker a requirement."""
        return not (self.untested or self.unknown or self.problems)

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (what ``gnomon dev reqs --json`` prints)."""
        return {
            "ok": self.ok,
            "requirements": [
                {
                    "id": r.id,
                    "requirement": r.text,
                    "verification": r.verification,
                    "doc": r.doc,
                    "line": r.line,
                    "tests": list(self.tests[r.id]),
                }
                for r in self.requirements
            ],
            "untested": list(self.untested),
            "unknown": [{"id": m.req_id, "test": m.test, "line": m.line} for m in self.unknown],
            "problems": list(self.problems),
        }


# ---------------------------------------------------------------------- the tables
def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [c.strip().replace("\\|", "|") for c in _CELL_SPLIT.split(body)]


def _is_header(line: str) -> bool:
    return line.lstrip().startswith("|") and tuple(c.lower() for c in _cells(line)) == _HEADER


def parse_table(text: str, doc: str) -> tuple[list[Requirement], list[str]]:
    """The requirements of one Markdown document (every ``| id | requirement |
    verification |`` table in it), and the problems found in its rows.

    >>> reqs, problems = parse_table(
    ...     "| id | requirement | verification |\\n|---|---|---|\\n"
    ...     "| AB-001 | The thing shall work. | Unit test |\\n| AB-2 | Bad id. | Unit test |\\n",
    ...     "ab.md")
    >>> [r.id for r in reqs], problems
    (['AB-001'], ["ab.md:4: requirement id 'AB-2' is not like CMD-001"])
    """
    reqs: list[Requirement] = []
    problems: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not _is_header(lines[i]):
            i += 1
            continue
        i += 2  # the header and its |---| separator
        while i < len(lines) and lines[i].lstrip().startswith("|"):
            where = f"{doc}:{i + 1}"
            cells = _cells(lines[i])
            if len(cells) != 3 or not all(cells):
                problems.append(f"{where}: a requirement row needs 3 non-empty cells")
            elif not REQ_ID.match(cells[0].strip("`")):
                problems.append(f"{where}: requirement id {cells[0]!r} is not like CMD-001")
            else:
                reqs.append(Requirement(cells[0].strip("`"), cells[1], cells[2], doc, i + 1))
            i += 1
    return reqs, problems


def parse_requirements(root: Path = REPO_ROOT) -> tuple[list[Requirement], list[str]]:
    """Every requirement in ``<root>/docs/components/*.md``, in file order, and the
    problems found (malformed rows, ids defined twice)."""
    reqs: list[Requirement] = []
    problems: list[str] = []
    for path in sorted((root / DOCS_DIR).glob("*.md")):
        text = _read(path, root, problems)
        if text is None:
            continue
        found, bad = parse_table(text, _rel(path, root))
        reqs += found
        problems += bad
    seen: dict[str, Requirement] = {}
    unique: list[Requirement] = []
    for r in reqs:
        first = seen.get(r.id)
        if first is not None:
            problems.append(
                f"{r.doc}:{r.line}: {r.id} is already defined at {first.doc}:{first.line}"
            )
            continue
        seen[r.id] = r
        unique.append(r)
    return unique, problems


# ---------------------------------------------------------------------- the markers
def _req_call(node: ast.expr) -> ast.Call | None:
    """``node`` if it is ``pytest.mark.req(...)`` or ``mark.req(...)``."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    f = node.func
    if f.attr != "req":
        return None
    owner = f.value
    if isinstance(owner, ast.Name) and owner.id == "mark":
        return node
    if (
        isinstance(owner, ast.Attribute)
        and owner.attr == "mark"
        and isinstance(owner.value, ast.Name)
        and owner.value.id == "pytest"
    ):
        return node
    return None


def _marks_in(nodes: Iterable[ast.expr]) -> Iterator[ast.Call]:
    for node in nodes:
        elements = node.elts if isinstance(node, ast.List | ast.Tuple) else [node]
        for el in elements:
            call = _req_call(el)
            if call is not None:
                yield call


def _module_marks(tree: ast.Module) -> list[ast.Call]:
    """``req`` marks in a module-level ``pytestmark = ...``."""
    out: list[ast.Call] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            out += _marks_in([node.value])
    return out


def _tests_in(
    tree: ast.Module,
) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, list[ast.Call]]]:
    """(qualified name, function, inherited class marks) of every test in a module."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            yield node.name, node, []
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            inherited = list(_marks_in(node.decorator_list))
            for item in node.body:
                if isinstance(
                    item, ast.FunctionDef | ast.AsyncFunctionDef
                ) and item.name.startswith("test"):
                    yield f"{node.name}::{item.name}", item, inherited


def parse_markers_source(source: str, module: str) -> tuple[list[Marker], list[str]]:
    """The ``req`` markers of one test module's source, and the problems found.

    >>> src = "import pytest\\n@pytest.mark.req('AB-001', 'AB-002')\\ndef test_x(): pass\\n"
    >>> [(m.req_id, m.test) for m in parse_markers_source(src, "tests/test_ab.py")[0]]
    [('AB-001', 'tests/test_ab.py::test_x'), ('AB-002', 'tests/test_ab.py::test_x')]
    """
    try:
        tree = ast.parse(source, filename=module)
    except SyntaxError as exc:
        return [], [f"{module}:{exc.lineno}: cannot parse: {exc.msg}"]
    markers: list[Marker] = []
    problems: list[str] = []
    for name, fn, inherited in _tests_in(tree):
        test = f"{module}::{name}"
        calls = [*_module_marks(tree), *inherited, *_marks_in(fn.decorator_list)]
        for call in calls:
            if call.keywords or not call.args:
                problems.append(f"{module}:{call.lineno}: req() takes requirement ids only")
            for arg in call.args:
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    problems.append(f"{module}:{call.lineno}: req() ids must be literal strings")
                elif not REQ_ID.match(arg.value):
                    problems.append(
                        f"{module}:{call.lineno}: {arg.value!r} is not a requirement id"
                    )
                else:
                    markers.append(Marker(arg.value, test, fn.lineno))
    return markers, problems


def parse_markers(root: Path = REPO_ROOT) -> tuple[list[Marker], list[str]]:
    """Every ``req`` marker in ``<root>/tests/**/*.py``, and the problems found."""
    markers: list[Marker] = []
    problems: list[str] = []
    for path in sorted((root / TESTS_DIR).rglob("*.py")):
        text = _read(path, root, problems)
        if text is None:
            continue
        found, bad = parse_markers_source(text, _rel(path, root))
        markers += found
        problems += bad
    return markers, problems


def trace(root: Path = REPO_ROOT) -> TraceReport:
    """Read the requirement tables and the test markers under ``root``."""
    reqs, req_problems = parse_requirements(root)
    markers, marker_problems = parse_markers(root)
    return TraceReport(tuple(reqs), tuple(markers), tuple(req_problems + marker_problems))


def _read(path: Path, root: Path, problems: list[str]) -> str | None:
    """The UTF-8 text of ``path``, or None with the reason added to ``problems``."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        problems.append(f"{_rel(path, root)}: cannot read: {reason}")
        return None


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


__all__ = [
    "REQ_ID",
    "Marker",
    "Requirement",
    "TraceReport",
    "parse_markers",
    "parse_markers_source",
    "parse_requirements",
    "parse_table",
    "trace",
]
