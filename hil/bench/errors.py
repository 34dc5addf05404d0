"""The one error family of the HIL bench (``hil.bench``)."""

from __future__ import annotations


class HilError(Exception):
    """The bench cannot do what was asked: no board answered, a bad setting, a pty that
    cannot be made. The message says what and what to do about it."""


__all__ = ["HilError"]
