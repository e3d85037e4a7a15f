"""Telemetry fields and profiles: which sensor views a rendering of activity contains.

A detector declares the fields it needs; a telemetry profile declares the fields it has. When a
needed field is missing the analytic is reported *not evaluable* with the missing fields, never
as a silent miss.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["PROFILE_FIELDS", "Field", "Profile"]


class Field(StrEnum):
    """One kind of information a sensor can supply."""

    #: Process creation with image path, command line and parent (Sysmon 1, EDR).
    PROCESS = "process"
    #: File reads attributed to a process (Security 4663 with a SACL, ETW, EDR).
    FILE_READ = "file.read"
    #: Byte and packet counts per flow direction (Zeek conn, NetFlow, EDR).
    FLOW_BYTES = "flow.bytes"
    #: Flows attributed to the process that owns the socket (Sysmon 3, EDR).
    FLOW_PROCESS = "flow.process"
    #: Application protocol identified from payload rather than port.
    FLOW_APP_PROTOCOL = "flow.app_protocol"
    #: DNS query names, types and answers.
    DNS_QUERY = "dns.query"
    #: DNS queries attributed to the calling process (Sysmon 22: resolver API only).
    DNS_PROCESS = "dns.process"
    #: Packet inspection: handshakes, sequence windows, malformed messages.
    PACKETS = "packets"


class Profile(StrEnum):
    """A named set of sensors under which a scenario can be rendered."""

    #: An EDR: process-attributed flows with bytes, file reads, DNS with process where the
    #: resolver API was used. No packet inspection.
    EDR = "edr"
    #: A packet capture only: flows, DNS and protocol anomalies, no process identity.
    NETWORK_ONLY = "network-only"
    #: Sysmon on the endpoints (process creation, resolver-API DNS with process, connections
    #: with process but no bytes) plus Zeek on the wire (flows with bytes and payload-identified
    #: service, every DNS query, no process), joined on 5-tuple and time by
    #: :mod:`harness.ingest.join`. The join restores flow-to-process attribution; Sysmon has no
    #: file-read event and Zeek's logs carry no packet-level inspection the detectors use.
    SYSMON_ZEEK = "sysmon+zeek"


PROFILE_FIELDS: dict[Profile, frozenset[Field]] = {
    Profile.EDR: frozenset(
        {
            Field.PROCESS,
            Field.FILE_READ,
            Field.FLOW_BYTES,
            Field.FLOW_PROCESS,
            Field.FLOW_APP_PROTOCOL,
            Field.DNS_QUERY,
            Field.DNS_PROCESS,
        }
    ),
    Profile.NETWORK_ONLY: frozenset(
        {Field.FLOW_BYTES, Field.FLOW_APP_PROTOCOL, Field.DNS_QUERY, Field.PACKETS}
    ),
    Profile.SYSMON_ZEEK: frozenset(
        {
            Field.PROCESS,
            Field.FLOW_BYTES,
            Field.FLOW_PROCESS,
            Field.FLOW_APP_PROTOCOL,
            Field.DNS_QUERY,
            Field.DNS_PROCESS,
        }
    ),
}
