"""The results table of a campaign: one SQLite file, ``DIR/campaign.sqlite``, one row a run.

SQLite, not Parquet: a campaign writes one row at a time as runs finish, over hours,
and may be killed at any moment. Each row is one transaction, so a crash loses at most
the run being written and never corrupts the others; the run id is the primary key, so
a run is in the table once however often it was attempted (``attempts`` counts them), and
a re-run finds what is done with one query. It needs nothing beyond Python, and any tool
reads it (``sqlite3 DIR/campaign.sqlite 'select * from runs'``; pandas ``read_sql``).

Columns: ``run_id``, ``kind``, ``scenario``, ``seed``, ``params`` (JSON), ``spec_hash``,
``code_version`` (client) and ``worker_code`` (the content hash of the code the worker
ran), ``status`` (``ok``/``failed``), ``summary`` (the run's deterministic summary, JSON),
``timing`` (wall-clock fields, JSON), ``error``, ``traceback``, ``replay`` (the exact
command), ``worker``, ``wall_s``, ``attempts``, ``finished_utc`` and one column per
headline figure (:data:`~hil.eval.campaign.runs.HEADLINE`).

>>> import tempfile
>>> from hil.eval.campaign.spec import RunSpec
>>> with tempfile.TemporaryDirectory() as d, ResultStore(Path(d) / "c.sqlite") as st:
...     run = RunSpec("sitl", "sitl-short", 3, ())
...     _ = st.record(run, {"run_id": run.run_id, "status": "ok", "summary": "{}", "figures":
...               {"min_soc": 0.8}}, spec_hash="s", code_version="v", replay="gnomon sitl")
...     st.done_ids() == {run.run_id}, st.rows()[0]["min_soc"]
(True, 0.8)
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from hil.eval.campaign.runs import HEADLINE
from hil.eval.campaign.spec import RunSpec

_COLUMNS = (
    ("run_id", "TEXT PRIMARY KEY"),
    ("kind", "TEXT NOT NULL"),
    ("scenario", "TEXT NOT NULL"),
    ("seed", "INTEGER NOT NULL"),
    ("params", "TEXT NOT NULL"),
    ("run", "TEXT NOT NULL"),
    ("spec_hash", "TEXT NOT NULL"),
    ("code_version", "TEXT NOT NULL"),
    ("worker_code", "TEXT"),
    ("status", "TEXT NOT NULL"),
    ("summary", "TEXT"),
    ("timing", "TEXT"),
    ("error", "TEXT"),
    ("traceback", "TEXT"),
    ("replay", "TEXT NOT NULL"),
    ("worker", "TEXT"),
    ("wall_s", "REAL"),
    ("attempts", "INTEGER NOT NULL"),
    ("finished_utc", "TEXT NOT NULL"),
    *((name, "REAL") for name in HEADLINE),
)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);\n"
    "CREATE TABLE IF NOT EXISTS specs(spec_hash TEXT PRIMARY KEY, text TEXT NOT NULL,"
    " first_used_utc TEXT NOT NULL);\n"
    f"CREATE TABLE IF NOT EXISTS runs({', '.join(f'{n} {t}' for n, t in _COLUMNS)});\n"
    "CREATE INDEX IF NOT EXISTS runs_status ON runs(status);\n"
)
SCHEMA_VERSION = "1"


class CampaignStoreError(RuntimeError):
    """A results file that cannot be used (not a campaign table, or unreadable)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ResultStore:
    """The results table (see the module docstring). Use as a context manager."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise CampaignStoreError(f"no campaign results at {self.path}")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            if create:
                self._db.executescript(SCHEMA)
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,)
                )
            version = self._db.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            raise CampaignStoreError(f"{self.path} is not a campaign results file: {exc}") from None
        if version is None or version[0] != SCHEMA_VERSION:
            raise CampaignStoreError(
                f"{self.path}: results table version {version[0] if version else '?'}, "
                f"this gnomon reads version {SCHEMA_VERSION}"
            )

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # ------------------------------------------------------------------ writing
    def add_spec(self, spec_hash: str, text: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO specs VALUES (?, ?, ?)", (spec_hash, text, _now()))

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def record(
        self,
        run: RunSpec,
        result: dict[str, Any],
        *,
        spec_hash: str,
        code_version: str,
        replay: str,
    ) -> bool:
        """Write a run's record; False (and nothing written) if the run is already done.

        A failed run is replaced when it is run again; a finished (``ok``) one never is.
        """
        figures = result.get("figures") or {}
        row: dict[str, Any] = {
            "run_id": run.run_id,
            "kind": run.kind,
            "scenario": run.scenario,
            "seed": run.seed,
            "params": json.dumps(dict(run.params), sort_keys=True),
            "run": run.canonical(),
            "spec_hash": spec_hash,
            "code_version": code_version,
            "worker_code": result.get("worker_code"),
            "status": result["status"],
            "summary": result.get("summary"),
            "timing": json.dumps(result.get("timing") or {}, sort_keys=True),
            "error": result.get("error"),
            "traceback": result.get("traceback"),
            "replay": replay,
            "worker": result.get("worker"),
            "wall_s": result.get("wall_s"),
            "finished_utc": _now(),
            **{name: figures.get(name) for name in HEADLINE},
        }
        names = [n for n, _ in _COLUMNS if n != "attempts"]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            prev = self._db.execute(
                "SELECT status, attempts FROM runs WHERE run_id = ?", (run.run_id,)
            ).fetchone()
            if prev is not None and prev[0] == "ok":
                return False
            attempts = 1 if prev is None else int(prev[1]) + 1
            self._db.execute(
                f"INSERT OR REPLACE INTO runs({', '.join(names)}, attempts) "
                f"VALUES ({', '.join('?' for _ in names)}, ?)",
                (*(row[n] for n in names), attempts),
            )
        return True

    # ------------------------------------------------------------------ reading
    def done_ids(self) -> set[str]:
        """Run ids finished without error (a re-run skips them)."""
        return {r[0] for r in self._db.execute("SELECT run_id FROM runs WHERE status = 'ok'")}

    def rows(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every row as a dict (column name -> value), in run-id order."""
        sql = "SELECT * FROM runs"
        args: tuple[Any, ...] = ()
        if status is not None:
            sql += " WHERE status = ?"
            args = (status,)
        cur = self._db.execute(sql + " ORDER BY run_id", args)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def counts(self) -> dict[str, int]:
        """Runs by status."""
        return {
            str(s): int(n)
            for s, n in self._db.execute("SELECT status, count(*) FROM runs GROUP BY status")
        }

    def meta(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def specs(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self._db.execute("SELECT spec_hash, text FROM specs")}


__all__ = ["SCHEMA", "CampaignStoreError", "ResultStore"]
