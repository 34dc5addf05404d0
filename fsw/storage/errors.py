"""The storage package's one error family."""

from __future__ import annotations


class StorageError(Exception):
    """A packet store, the file store or a file transfer cannot do what was asked; the
    message says what and why, in words an operator can act on."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


__all__ = ["StorageError"]
