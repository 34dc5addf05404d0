"""Requirements you can trace: every requirement in docs/components/*.md has a test that
verifies it and every ``req`` marker names a requirement (``gnomon dev reqs``)."""

from __future__ import annotations

import doctest
import importlib
import json
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gnomon.dev import dev_app
from gnomon.reqs import trace

ROOT = Path(__file__).resolve().parents[1]
COMPONENT_DOCS = ROOT / "docs" / "components"


def test_every_requirement_has_a_test_and_every_marker_names_one() -> None:
    report = trace(ROOT)
    assert report.problems == ()
    assert report.untested == ()  # write the test, then mark it @pytest.mark.req("<id>")
    assert [(m.req_id, m.test) for m in report.unknown] == []
    result = CliRunner().invoke(dev_app, ["reqs", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True


def test_every_component_note_has_four_to_ten_requirements_under_its_own_prefix() -> None:
    by_doc: dict[str, list[str]] = defaultdict(list)
    for r in trace(ROOT).requirements:
        by_doc[r.doc].append(r.id)
    notes = sorted(p.relative_to(ROOT).as_posix() for p in COMPONENT_DOCS.glob("*.md"))
    assert sorted(by_doc) == notes
    owner: dict[str, str] = {}
    for doc, ids in by_doc.items():
        assert 4 <= len(ids) <= 10, f"{doc} has {len(ids)} requirements"
        (prefix,) = {i.rsplit("-", 1)[0] for i in ids}
        assert owner.setdefault(prefix, doc) == doc, f"{prefix} used by {owner[prefix]} and {doc}"


LAMP_DOC = """# `lamp`: a lamp

## Requirements

| id | requirement | verification |
|---|---|---|
| LMP-001 | The lamp shall light on `ON`. | Unit test |
| LMP-002 | The lamp shall dim on `DIM` (level 0 \\| 1). | Unit test |

<!-- BEGIN GENERATED: gnomon dict docs -->

| channel | id | type | units | description |
|---|---|---|---|---|
| `lamp.on` | 0x1001 | bool | - | lit |

<!-- END GENERATED -->
"""

LAMP_TESTS = """import pytest


@pytest.mark.req("LMP-001")
def test_it_lights() -> None:
    pass


@pytest.mark.req("LMP-009")
class TestDim:
    def test_dims(self) -> None:
        pass
"""


def _repo(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "docs" / "components").mkdir(parents=True)
    (tmp_path / "docs" / "components" / "lamp.md").write_text(LAMP_DOC, encoding="utf-8")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_lamp.py").write_text(tests, encoding="utf-8")
    return tmp_path


def test_a_deliberately_untested_requirement_and_an_unknown_id_are_found(tmp_path: Path) -> None:
    root = _repo(tmp_path, LAMP_TESTS)
    report = trace(root)
    assert [r.id for r in report.requirements] == ["LMP-001", "LMP-002"]  # not the generated table
    assert report.requirements[1].text == "The lamp shall dim on `DIM` (level 0 | 1)."
    assert report.tests["LMP-001"] == ("tests/test_lamp.py::test_it_lights",)
    assert report.untested == ("LMP-002",)
    assert [(m.req_id, m.test) for m in report.unknown] == [
        ("LMP-009", "tests/test_lamp.py::TestDim::test_dims")
    ]
    assert not report.ok

    result = CliRunner().invoke(dev_app, ["reqs", "--root", str(root)])
    assert result.exit_code == 1
    assert "LMP-002 (docs/components/lamp.md:8) has no test" in result.stderr
    assert "TestDim::test_dims marks req('LMP-009'), which no table defines" in result.stderr
    result = CliRunner().invoke(dev_app, ["reqs", "--root", str(root), "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["untested"] == ["LMP-002"]


def test_once_every_requirement_is_tested_the_check_passes(tmp_path: Path) -> None:
    fixed = LAMP_TESTS.replace('"LMP-009"', '"LMP-002"')
    root = _repo(tmp_path, fixed)
    assert trace(root).ok
    result = CliRunner().invoke(dev_app, ["reqs", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert "LMP-002  The lamp shall dim" in result.stdout
    assert "    tests/test_lamp.py::TestDim::test_dims" in result.stdout


def test_malformed_rows_duplicate_ids_and_non_literal_markers_are_problems(
    tmp_path: Path,
) -> None:
    root = _repo(
        tmp_path,
        'import pytest\n\nID = "LMP-001"\n\n\n'
        "@pytest.mark.req(ID)\ndef test_it_lights() -> None:\n    pass\n",
    )
    (root / "docs" / "components" / "bulb.md").write_text(
        "| id | requirement | verification |\n|---|---|---|\n"
        "| LMP-001 | Again. | Unit test |\n| BLB-1 | Short id. | Unit test |\n"
        "| BLB-002 | No verification. |\n",
        encoding="utf-8",
    )
    problems = trace(root).problems
    assert len(problems) == 4
    assert "docs/components/bulb.md:4: requirement id 'BLB-1' is not like CMD-001" in problems
    assert "docs/components/bulb.md:5: a requirement row needs 3 non-empty cells" in problems
    assert (  # bulb.md sorts first, so lamp.md's row is the second definition
        "docs/components/lamp.md:7: LMP-001 is already defined at docs/components/bulb.md:3"
        in problems
    )
    assert "tests/test_lamp.py:6: req() ids must be literal strings" in problems
    (root / "docs" / "components" / "latin1.md").write_bytes(b"| caf\xe9 |\n")
    assert "docs/components/latin1.md: cannot read: not UTF-8 text" in trace(root).problems
    assert CliRunner().invoke(dev_app, ["reqs", "--root", str(root)]).exit_code == 1


def test_a_directory_without_docs_or_tests_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(dev_app, ["reqs", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "pass the repository root with --root" in result.stderr


@pytest.mark.parametrize("name", ["gnomon.reqs", "gnomon.dev"])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
