"""Readers that turn recorded telemetry into the project's events.

* :mod:`harness.ingest.pcap`: pcap and pcapng captures to NetworkFlow, DnsQuery and
  ProtocolAnomaly events (:func:`read_pcap`, :class:`PcapEventReader`).
"""

from __future__ import annotations

from harness.ingest.pcap import (
    AddressPlan,
    IngestConfig,
    PcapEventReader,
    PcapInputError,
    ReadStats,
    read_pcap,
)

__all__ = [
    "AddressPlan",
    "IngestConfig",
    "PcapEventReader",
    "PcapInputError",
    "ReadStats",
    "read_pcap",
]
