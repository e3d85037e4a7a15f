"""Readers that turn recorded telemetry into the project's events, and the join between them.

* :mod:`harness.ingest.pcap`: pcap and pcapng captures to NetworkFlow, DnsQuery and
  ProtocolAnomaly events (:func:`read_pcap`, :class:`PcapEventReader`).
* :mod:`harness.ingest.zeek`: Zeek ``conn``, ``dns``, ``http`` and ``ssl`` logs, TSV or JSON,
  plain or gzip (:func:`read_zeek`).
* :mod:`harness.ingest.sysmon`: Sysmon events 1, 3, 11, 22 and Security 4663 from EVTX, XML
  exports and Winlogbeat or OTRF JSON lines (:func:`read_sysmon`).
* :mod:`harness.ingest.join`: endpoint connections (Sysmon 3) joined to flow records on the
  5-tuple and time, making process-attributed flows (:func:`join`).
* :mod:`harness.ingest.sources`: format sniffing and the merged, joined stream of any mix of
  inputs (:func:`open_inputs`), used by ``egress-harness readiness`` and ``evaluate``.

Every reader names the file and position of damaged input, skips what it cannot read, goes on
where it safely can, and counts what it skipped.
"""

from __future__ import annotations

from harness.ingest.join import join
from harness.ingest.pcap import (
    AddressPlan,
    IngestConfig,
    PcapEventReader,
    PcapInputError,
    ReadStats,
    read_pcap,
)
from harness.ingest.sources import open_inputs
from harness.ingest.sysmon import SysmonInputError, SysmonReader, read_sysmon
from harness.ingest.zeek import ZeekInputError, read_zeek

__all__ = [
    "AddressPlan",
    "IngestConfig",
    "PcapEventReader",
    "PcapInputError",
    "ReadStats",
    "SysmonInputError",
    "SysmonReader",
    "ZeekInputError",
    "join",
    "open_inputs",
    "read_pcap",
    "read_sysmon",
    "read_zeek",
]
