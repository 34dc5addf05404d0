"""A Yamcs 5.12 configuration from Gnomon's own link configuration and dictionary.

``gnomon yamcs config --out DIR`` writes::

    DIR/etc/yamcs.yaml            HTTP on 127.0.0.1, one instance "gnomon"
    DIR/etc/yamcs.gnomon.yaml     the TM/TC frame links, SDLS, COP-1, the MDB
    DIR/etc/processor.yaml        the realtime processor (verifiers, alarms)
    DIR/etc/events.json           message templates: PUS-5 events become Yamcs events
    DIR/etc/cfdp_streams.sql      CFDP PDUs on APID 0x7FD to/from Yamcs' CfdpService
    DIR/mdb/gnomon.xml            XTCE of the dictionary (ground.yamcs.xtce)
    DIR/keys/sdls-spi<N>.key      the SA's key, 32 raw bytes (mode 0600)
    DIR/gnomon-yamcs.json         ports and the spacecraft's link URL

Frame length, SCID, VCs, idle VC, randomisation, CLTU coding, segment header, COP-1
window/T1/transmission limit and the SA all come from one :class:`LinkConfig`, so Yamcs
and the spacecraft cannot drift apart. Paths inside are absolute (Yamcs resolves relative
ones against its working directory).

>>> from fsw.ccsds.config import TEST_KEY_FILE, LinkConfig
>>> plan = YamcsPlan.make(LinkConfig.load(TEST_KEY_FILE), tm_port=10017, tc_port=10025)
>>> plan.spi, plan.sitl_link
(3, 'udp://127.0.0.1:10025?tm=127.0.0.1:10017&mode=frame')
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fsw.ccsds.cfdp import CFDP_APID
from fsw.ccsds.config import LinkConfig
from fsw.ccsds.sdls import FULL_MASK, STANDARD_MASK, MacAlgorithm, auth_mask, parse_mask
from ground.dictionary import Dictionary
from ground.yamcs.xtce import ROOT, XtceExport, to_xtce

INSTANCE = "gnomon"
LOOPBACK = "127.0.0.1"
#: Default ports: Yamcs' HTTP, the TM port Yamcs binds, the TC port the spacecraft binds.
HTTP_PORT, TM_PORT, TC_PORT = 8090, 10017, 10025
GCM_FACTORY = "org.yamcs.security.sdls.SecurityAssociationAes256Gcm128Factory"
#: Yamcs' CFDP service: the ground entity, the spacecraft's entity, the bucket files land in
#: (the flight's defaults, fsw/comms/cfdp.py: local 1, remote 2).
CFDP_GROUND_ID, CFDP_FLIGHT_ID, CFDP_BUCKET = 2, 1, "cfdpDown"
#: Yamcs' TC header around a PDU on APID 0x7FD (``CFDP_APID``): version 0, TC, no secondary
#: header, unsegmented; the PusCommandPostprocessor fills the length and sequence count
#: (no CRC: Yamcs adds one only behind a secondary header). The command name must exist in
#: the MDB (Yamcs' COP-1 reads its MAP id from the MetaCommand; an unknown name leaves the
#: PDU in the COP-1 wait queue forever): the abstract ``pus_tc``, which adds nothing.
#: One statement a line.
CFDP_STREAMS_SQL = (
    "create stream cfdp_in as select substring(packet, 6) as pdu from tm_realtime"
    " where extract_short(packet, 0) = {tm_id}\n"
    "create stream cfdp_out (gentime TIMESTAMP, entityId long, seqNum int, pdu binary)\n"
    "insert into tc_realtime select gentime, 'cfdp-service' as origin, seqNum,"
    " '{cmd}' as cmdName, unhex('{tc_head}C0000000') + pdu as binary"
    " from cfdp_out\n"
)


class YamcsConfigError(Exception):
    """The link configuration has something a stock Yamcs cannot fly."""


@dataclass(frozen=True, slots=True)
class YamcsPlan:
    """Ports, the SA and the URLs of one Yamcs + spacecraft setup."""

    http_port: int
    tm_port: int
    tc_port: int
    spi: int | None
    auth_mask_hex: str | None

    @property
    def sitl_link(self) -> str:
        """The spacecraft's ``--link``: TC on its port, TM to Yamcs, a frame per datagram."""
        return f"udp://{LOOPBACK}:{self.tc_port}?tm={LOOPBACK}:{self.tm_port}&mode=frame"

    @property
    def url(self) -> str:
        """Yamcs' HTTP address (what yamcs-client takes)."""
        return f"{LOOPBACK}:{self.http_port}"

    def web_ui(self, parameter: str = "") -> str:
        """The web UI, or one parameter's page (``/GNOMON/eps/soc_pct``)."""
        base = f"http://{self.url}"
        if not parameter:
            return f"{base}/?c={INSTANCE}__realtime"
        return f"{base}/telemetry/parameters{parameter}/-/summary?c={INSTANCE}__realtime"

    @classmethod
    def make(
        cls,
        cfg: LinkConfig,
        *,
        http_port: int = HTTP_PORT,
        tm_port: int = TM_PORT,
        tc_port: int = TC_PORT,
        spi: int | None = None,
    ) -> YamcsPlan:
        """Check ``cfg`` against what Yamcs can do and pick the SA (the first AES-GCM one
        unless ``spi``; None when the link has no SDLS)."""
        _check_link(cfg)
        gcm = [
            sa.spi
            for sa in cfg.security_associations
            if MacAlgorithm(sa.algorithm) is MacAlgorithm.AES_GCM
        ]
        if spi is None and cfg.sdls_enabled:
            if not gcm:
                raise YamcsConfigError(
                    "Yamcs 5.12 protects TC frames with AES-256-GCM only, and the key file "
                    'has no aes-gcm SA: add one ([[sdls.sa]] algorithm = "aes-gcm")'
                )
            spi = gcm[0]
        mask = None
        if spi is not None:
            if spi not in gcm:
                raise YamcsConfigError(
                    f"SPI {spi} is not an aes-gcm SA of the key file (Yamcs does AES-256-GCM "
                    f"only; aes-gcm SPIs here: {gcm or 'none'})"
                )
            sa = cfg.sa_config(spi)
            if len(cfg.key(sa.key_id)) != 32:
                raise YamcsConfigError(f"SPI {spi}: Yamcs needs a 32-byte (AES-256) key")
            if sa.mac_len != 16:
                raise YamcsConfigError(f"SPI {spi}: Yamcs' GCM tag is 16 bytes, not {sa.mac_len}")
            mask = _mask_hex(sa.auth_mask, cfg.tc_header_len)
        return cls(http_port, tm_port, tc_port, spi, mask)


def _check_link(cfg: LinkConfig) -> None:
    if cfg.tc_max_frame_len > 1024:
        raise YamcsConfigError("Yamcs' TC frames are at most 1024 bytes")
    if cfg.fop_window * 2 > cfg.farm_window:
        raise YamcsConfigError(
            f"the COP-1 window ({cfg.fop_window}) must be at most half the FARM window "
            f"({cfg.farm_window})"
        )


def _mask_hex(mask: str, header_len: int) -> str | None:
    """Yamcs' ``authMask`` for a Gnomon mask (None: Yamcs' standard mask is the same)."""
    if mask == STANDARD_MASK:
        return None
    if mask == FULL_MASK:
        return (b"\xff" * (header_len + 14)).hex().upper()
    return auth_mask(parse_mask(mask), MacAlgorithm.AES_GCM, header_len).hex().upper()


def _yaml(value: Any, indent: int = 0) -> str:
    """YAML for plain dicts/lists/scalars (JSON scalars are valid YAML)."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{k}:\n{_yaml(v, indent + 2)}")
            else:
                lines.append(f"{pad}{k}: {_yaml(v)}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        lines = []
        for v in value:
            if isinstance(v, dict):
                body = _yaml(v, indent + 2)
                lines.append(f"{pad}- {body[indent + 2 :]}")
            else:
                lines.append(f"{pad}- {_yaml(v)}")
        return "\n".join(lines)
    return json.dumps(value)


def cfdp_streams_sql() -> str:
    """``cfdp_streams.sql``: the SQL streams between the frame links and the CfdpService."""
    return CFDP_STREAMS_SQL.format(
        tm_id=CFDP_APID, tc_head=f"{0x1000 | CFDP_APID:04X}", cmd=f"/{ROOT}/pus_tc"
    )


def cfdp_service(cfg: LinkConfig) -> dict[str, Any]:
    """Yamcs' CfdpService: entity ids 2 bytes and sequence numbers 4 bytes as the flight
    sends them (``ByteFieldU16``/``ByteFieldU32``); its PDUs fit one TC frame."""
    room = cfg.tc_max_frame_len - 5 - 1 - 2 - 12 - 16 - 2 - 6 - 2  # hdr, seg, SDLS, FECF, pkt, CRC
    return {
        "class": "org.yamcs.cfdp.CfdpService",
        "name": "cfdp0",
        "args": {
            "inStream": "cfdp_in",
            "outStream": "cfdp_out",
            "incomingBucket": CFDP_BUCKET,
            "entityIdLength": 2,
            "sequenceNrLength": 4,
            "maxPduSize": room,
            "localEntities": [{"name": "ground", "id": CFDP_GROUND_ID}],
            "remoteEntities": [{"name": "gnomon", "id": CFDP_FLIGHT_ID}],
        },
    }


def instance_config(
    cfg: LinkConfig,
    plan: YamcsPlan,
    mdb: Path,
    key: Path | None,
    events: Path | None = None,
    cfdp_sql: Path | None = None,
) -> str:
    """``yamcs.gnomon.yaml``: the data links, the MDB and the streams (with ``cfdp_sql``,
    the CFDP service)."""
    pus_time = {"type": "CUC", "implicitPField": 0x1E, "epoch": "TAI"}
    # PUS TM and CFDP packets (no secondary header, no CRC) share the VC, and Yamcs'
    # PusPacketPreprocessor drops the latter. The generic one passes both and reads the
    # CUC where PUS puts it (byte 13), so a PUS report keeps its time (and the archive
    # still merges the realtime and playback copies); the PUS CRC is left to the frame
    # FECF, and a CFDP packet is archived under whatever its bytes 13-18 say.
    tm_pre: dict[str, Any] = {
        "packetPreprocessorClassName": "org.yamcs.tctm.GenericPacketPreprocessor",
        "packetPreprocessorArgs": {
            "timestampOffset": 13,
            "seqCountOffset": 0,
            "timeEncoding": pus_time,
        },
    }
    if cfdp_sql is None:
        tm_pre = {
            "packetPreprocessorClassName": "org.yamcs.pus.PusPacketPreprocessor",
            "packetPreprocessorArgs": {
                "errorDetection": {"type": "CRC-16-CCIIT"},
                "timeEncoding": pus_time,
            },
        }
    tm_vcs = [
        {
            "vcId": vc,
            "service": "PACKET",
            "maxPacketLength": cfg.tm_frame_len,
            "stream": "tm_realtime",
            **tm_pre,
        }
        for vc in sorted({*cfg.tm_vcids, cfg.idle_vcid})
    ]
    tc_vc: dict[str, Any] = {
        "vcId": cfg.tc_vcid,
        "service": "PACKET",
        "mapId": cfg.map_id if cfg.tc_segment_header else -1,
        "stream": "tc_realtime",
        "multiplePacketsPerFrame": False,
        "commandPostprocessorClassName": "org.yamcs.pus.PusCommandPostprocessor",
        "commandPostprocessorArgs": {"errorDetection": {"type": "CRC-16-CCIIT"}},
        "useCop1": True,
        "clcwStream": "clcw",
        "initialClcwWait": 3600,
        "cop1T1": max(1, math.ceil(cfg.fop_t1_s)),
        "cop1TxLimit": cfg.fop_transmission_limit,
        "slidingWindowWidth": cfg.fop_window,
        "bdAbsolutePriority": False,
    }
    tc_link: dict[str, Any] = {
        "name": "TC_FRAMES",
        "class": "org.yamcs.tctm.ccsds.UdpTcFrameLink",
        "host": LOOPBACK,
        "port": plan.tc_port,
        "spacecraftId": cfg.spacecraft_id,
        "maxFrameLength": cfg.tc_max_frame_len,
        "errorDetection": "CRC16",
        "cltuEncoding": "BCH",
        "randomizeCltu": cfg.randomize_tc,
    }
    if plan.spi is not None and key is not None:
        sa: dict[str, Any] = {"spi": plan.spi, "class": GCM_FACTORY}
        if plan.auth_mask_hex:
            sa["authMask"] = plan.auth_mask_hex
        sa["args"] = {"keyFile": str(key)}
        tc_link["encryption"] = [sa]
        tc_vc["encryptionSpi"] = plan.spi
    tc_link["virtualChannels"] = [tc_vc]
    doc = {
        "services": [
            {"class": f"org.yamcs.archive.{name}"}
            for name in (
                "XtceTmRecorder",
                "ParameterRecorder",
                "AlarmRecorder",
                "EventRecorder",
                "ReplayServer",
                "CommandHistoryRecorder",
            )
        ]
        + [
            {
                "class": "org.yamcs.ProcessorCreatorService",
                "args": {"name": "realtime", "type": "realtime"},
            }
        ]
        + (
            []
            if events is None
            else [
                {
                    "class": "org.yamcs.pus.PusEventDecoder",
                    "args": {
                        "eventIdParameter": "/GNOMON/event_id",
                        "eventTemplateFile": str(events),
                    },
                }
            ]
        )
        + ([] if cfdp_sql is None else [cfdp_service(cfg)]),
        "dataLinks": [
            {
                "name": "TM_FRAMES",
                "class": "org.yamcs.tctm.ccsds.UdpTmFrameLink",
                "port": plan.tm_port,
                "frameType": "TM",
                "spacecraftId": cfg.spacecraft_id,
                "frameLength": cfg.tm_frame_len,
                "errorDetection": "CRC16",
                "rawFrameDecoder": {"codec": "NONE", "derandomize": cfg.randomize_tm},
                "clcwStream": "clcw",
                "goodFrameStream": "good_frame_stream",
                "badFrameStream": "bad_frame_stream",
                "virtualChannels": tm_vcs,
            },
            tc_link,
        ],
        "mdb": [{"type": "xtce", "spec": str(mdb)}],
        "streamConfig": {
            "tm": [{"name": "tm_realtime", "processor": "realtime"}],
            "invalidTm": "invalid_tm_stream",
            "cmdHist": ["cmdhist_realtime", "cmdhist_dump"],
            "event": ["events_realtime", "events_dump"],
            "param": ["pp_realtime", "sys_param", "proc_param"],
            "parameterAlarm": ["alarms_realtime"],
            "eventAlarm": ["event_alarms_realtime"],
            "tc": [{"name": "tc_realtime", "processor": "realtime"}],
            **({} if cfdp_sql is None else {"sqlFile": str(cfdp_sql)}),
        },
    }
    head = (
        "# Generated by gnomon yamcs config from the link configuration: do not edit.\n"
        f"# SCID {cfg.spacecraft_id}, TM {cfg.tm_frame_len} B on VCs "
        f"{sorted({*cfg.tm_vcids, cfg.idle_vcid})}, TC VC {cfg.tc_vcid}, "
        f"SDLS SPI {plan.spi if plan.spi is not None else 'off'}.\n"
    )
    return head + _yaml(doc) + "\n"


SERVER_YAML = """\
# Generated by gnomon yamcs config. Loopback only, no security.yaml: every request runs as
# the guest superuser, so never expose this port.
services:
  - class: org.yamcs.http.HttpServer
    args:
      address: 127.0.0.1
      port: {port}
instances:
  - {instance}
secretKey: "{secret}"
"""

PROCESSOR_YAML = """\
# Generated by gnomon yamcs config: the realtime processor (PUS-1 verifiers run in the
# AlgorithmManager; limits raise alarms).
realtime:
  services:
    - class: org.yamcs.StreamTmPacketProvider
    - class: org.yamcs.StreamTcCommandReleaser
    - class: org.yamcs.tctm.StreamParameterProvider
    - class: org.yamcs.algorithms.AlgorithmManager
    - class: org.yamcs.parameter.LocalParameterManager
  config:
    subscribeAll: true
    alarm:
      parameterCheck: true
      parameterServer: enabled
      eventServer: enabled
    recordLocalValues: true
"""


@dataclass(frozen=True, slots=True)
class WrittenConfig:
    """What :func:`write_config` wrote."""

    root: Path
    etc: Path
    plan: YamcsPlan
    xtce: XtceExport


def write_config(
    out: Path, cfg: LinkConfig, dictionary: Dictionary, plan: YamcsPlan
) -> WrittenConfig:
    """Write the whole Yamcs configuration under ``out`` (raises OSError)."""
    out = out.resolve()
    etc, mdb_dir, keys = out / "etc", out / "mdb", out / "keys"
    for d in (etc, mdb_dir, keys):
        d.mkdir(parents=True, exist_ok=True)
    xtce = to_xtce(dictionary)
    mdb = mdb_dir / "gnomon.xml"
    mdb.write_text(xtce.xml, encoding="utf-8")
    key_path = None
    if plan.spi is not None:
        key_path = keys / f"sdls-spi{plan.spi}.key"
        key = cfg.key(cfg.sa_config(plan.spi).key_id)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
    (etc / "yamcs.yaml").write_text(
        SERVER_YAML.format(port=plan.http_port, instance=INSTANCE, secret=os.urandom(16).hex()),
        encoding="utf-8",
    )
    events = None
    if xtce.event_templates:
        events = etc / "events.json"
        events.write_text(json.dumps(xtce.event_templates, indent=1) + "\n", encoding="utf-8")
    cfdp_sql = etc / "cfdp_streams.sql"
    cfdp_sql.write_text(cfdp_streams_sql(), encoding="utf-8")
    (etc / f"yamcs.{INSTANCE}.yaml").write_text(
        instance_config(cfg, plan, mdb, key_path, events, cfdp_sql), encoding="utf-8"
    )
    (etc / "processor.yaml").write_text(PROCESSOR_YAML, encoding="utf-8")
    (out / "gnomon-yamcs.json").write_text(
        json.dumps(
            {
                **asdict(plan),
                "sitl_link": plan.sitl_link,
                "web_ui": plan.web_ui(),
                "instance": INSTANCE,
                "dictionary": dictionary.content_hash,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return WrittenConfig(out, etc, plan, xtce)


__all__ = [
    "CFDP_BUCKET",
    "HTTP_PORT",
    "INSTANCE",
    "TC_PORT",
    "TM_PORT",
    "WrittenConfig",
    "YamcsConfigError",
    "YamcsPlan",
    "instance_config",
    "write_config",
]
