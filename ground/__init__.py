"""Gnomon's ground segment: dictionary-driven codec, archive, console and test API.

It works from the exported flight dictionary alone (``gnomon dict export --format json``)
and talks to the spacecraft through the CCSDS stack (:mod:`fsw.ccsds`) over any
:func:`fsw.link.open_link` transport. Layers, innermost first:

- :class:`GroundSession`: no I/O, no threads, time passed in (SITL drives it);
- :class:`GroundStation`: a session on a real link with a receive thread;
- :class:`TestApi`: send-and-await, telemetry and event assertions for pytest;
- :class:`Archive`: SQLite (WAL) of packets, samples, events and command history.

>>> from ground import Dictionary, GroundSession, minimal_dictionary
>>> session = GroundSession(minimal_dictionary(), None)
>>> len(session.encode_command("PING"))
13
"""

from ground.archive import Archive, ArchivedPacket, CommandRecord
from ground.codec import TmDecoder, encode_args
from ground.dictionary import Dictionary, HkLayout, LimitState, minimal_dictionary
from ground.errors import (
    ArchiveError,
    AwaitTimeout,
    CommandFailedError,
    CommandValidationError,
    DecodeError,
    DictionaryError,
    GroundError,
    StationError,
)
from ground.records import ChannelValue, Decoded, EventRecord, HkSample, Sample
from ground.session import GroundSession, TelemetryTable, replay_archive
from ground.tracker import CommandHandle, CommandTimeouts, CommandTracker, Stage, StageRecord

__all__ = [
    "Archive",
    "ArchiveError",
    "ArchivedPacket",
    "AwaitTimeout",
    "ChannelValue",
    "CommandFailedError",
    "CommandHandle",
    "CommandRecord",
    "CommandTimeouts",
    "CommandTracker",
    "CommandValidationError",
    "DecodeError",
    "Decoded",
    "Dictionary",
    "DictionaryError",
    "EventRecord",
    "GroundError",
    "GroundSession",
    "HkLayout",
    "HkSample",
    "LimitState",
    "Sample",
    "Stage",
    "StageRecord",
    "StationError",
    "TelemetryTable",
    "TmDecoder",
    "encode_args",
    "minimal_dictionary",
    "replay_archive",
]
