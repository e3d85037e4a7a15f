"""Packet captures for the network-only rendering of scenarios.

* :mod:`harness.pcap.writer`: a fast, deterministic classic-pcap writer and a reader.
* :mod:`harness.pcap.packets`: Ethernet/IPv4/IPv6/TCP/UDP frame builders with correct checksums.
* :mod:`harness.pcap.dnswire`: DNS messages in wire format, built and parsed.
* :mod:`harness.pcap.render`: flows and DNS exchanges rendered as packet sequences.

Frames crafted elsewhere (with scapy, for deliberately unusual packets) are written as raw bytes:
``writer.write(ts_ns, bytes(packet))``.
"""

from __future__ import annotations

from harness.pcap.render import (
    FlowSpec,
    PlannedPacket,
    RenderedFlow,
    dns_flow,
    merge_flows,
    plan_flow,
    render_dns,
    render_flow,
    write_flows,
)
from harness.pcap.writer import PcapFormatError, PcapHeader, PcapReader, PcapWriter, iter_pcap

__all__ = [
    "FlowSpec",
    "PcapFormatError",
    "PcapHeader",
    "PcapReader",
    "PcapWriter",
    "PlannedPacket",
    "RenderedFlow",
    "dns_flow",
    "iter_pcap",
    "merge_flows",
    "plan_flow",
    "render_dns",
    "render_flow",
    "write_flows",
]
