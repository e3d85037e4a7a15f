"""Port/protocol conformance: does the application protocol found in a flow's payload belong on
the port it used? And is an address local (never "the outside")?

Responsibility: the rule table behind "DNS off 53, HTTP off 80/8080/8000, TLS off 443/8443,
non-TLS on 443, SMB off 445/139", as one function, :func:`port_protocol_verdict`, that returns
``None`` for conforming traffic and a :class:`Mismatch` (severity and a human description)
otherwise, plus :func:`is_local_address` for multicast, broadcast, loopback, link-local and
private (RFC 1918, CGNAT, ULA) addresses.

Severity:

* ``1.0`` **impersonation**: a protocol on a port owned by another identifiable protocol (TLS or
  HTTP on 53, plain HTTP on 443, TLS on 80, DNS on 443), DNS anywhere but 53, SMB anywhere but
  445/139. Benign software almost never does this.
* ``0.7`` **odd port**: HTTP or TLS on an unassigned port (TLS on 8531, HTTP on 8090), or an
  unidentified payload on TCP/443 or on 53 (a capture that starts mid-connection, or a TLS
  handshake the sensor missed, also gives "unknown": callers discount those). Vendor updaters
  and admin consoles do this; callers should check the baseline.

Conforming by design: QUIC, RTP and DTLS-style TLS over UDP on any port except 53 and 123
(meeting media and HTTP/3 use high UDP ports); an unidentified payload on any port but 443 and
53 (that is a custom protocol, AN1225's and AN0030's business, not a port/protocol mismatch);
the alternative ports listed in :data:`STANDARD_PORTS` (TLS on IMAPS, POP3S, LDAPS, DoT, MQTT,
Apple push ...).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import lru_cache

from harness.events import AppProtocol, Transport

__all__ = [
    "IMPERSONATION",
    "ODD_PORT",
    "STANDARD_PORTS",
    "Mismatch",
    "is_group_address",
    "is_local_address",
    "port_protocol_verdict",
]

_TCP, _UDP = Transport.TCP, Transport.UDP

#: Ports where each identified protocol conforms, per transport.
STANDARD_PORTS: dict[tuple[AppProtocol, Transport], frozenset[int]] = {
    (AppProtocol.DNS, _UDP): frozenset({53}),
    (AppProtocol.DNS, _TCP): frozenset({53}),
    (AppProtocol.HTTP, _TCP): frozenset({80, 8080, 8000, 8008, 8888, 3128, 591}),
    (AppProtocol.HTTP, _UDP): frozenset({1900}),  # SSDP: HTTP over UDP (multicast)
    (AppProtocol.TLS, _TCP): frozenset(
        {443, 8443, 853, 993, 995, 465, 636, 989, 990, 5061, 5223, 3269, 8883, 9443, 6697}
    ),
    (AppProtocol.SMB, _TCP): frozenset({445, 139}),
}

#: Ports owned by one identifiable protocol: another protocol there is impersonation.
_OWNER: dict[int, AppProtocol] = {
    53: AppProtocol.DNS,
    80: AppProtocol.HTTP,
    8080: AppProtocol.HTTP,
    8000: AppProtocol.HTTP,
    443: AppProtocol.TLS,
    8443: AppProtocol.TLS,
    853: AppProtocol.TLS,
    445: AppProtocol.SMB,
    139: AppProtocol.SMB,
}
_UDP_ANY_PORT = frozenset({AppProtocol.QUIC, AppProtocol.RTP, AppProtocol.TLS})
_UDP_RESERVED = frozenset({53, 123})

IMPERSONATION = 1.0
ODD_PORT = 0.7


@dataclass(frozen=True, slots=True, kw_only=True)
class Mismatch:
    """Why a flow's protocol does not belong on its port."""

    severity: float
    description: str


def _name(app: AppProtocol) -> str:
    return "an unidentified protocol" if app is AppProtocol.UNKNOWN else app.value.upper()


@lru_cache(maxsize=4_096)
def port_protocol_verdict(app: AppProtocol, transport: Transport, port: int) -> Mismatch | None:
    """``None`` when ``app`` conforms on ``transport``/``port``, else the mismatch (see the
    module docstring). The caller decides whether the flow is outbound and how to discount."""
    where = f"{transport.value}/{port}"
    if transport is _UDP and app in _UDP_ANY_PORT:
        if port not in _UDP_RESERVED:
            return None
        return Mismatch(severity=IMPERSONATION, description=f"{_name(app)} on {where}")
    if app is AppProtocol.UNKNOWN:
        if port == 443 and transport is _TCP:
            return Mismatch(severity=ODD_PORT, description=f"non-TLS payload on {where}")
        if port == 53:
            return Mismatch(severity=ODD_PORT, description=f"non-DNS payload on {where}")
        return None
    if port in STANDARD_PORTS.get((app, transport), ()):
        return None
    owner = _OWNER.get(port)
    if owner is not None and owner is not app:
        return Mismatch(
            severity=IMPERSONATION,
            description=f"{_name(app)} on {where}, a {owner.value.upper()} port",
        )
    if app in (AppProtocol.DNS, AppProtocol.SMB):
        return Mismatch(severity=IMPERSONATION, description=f"{_name(app)} off its port, {where}")
    return Mismatch(severity=ODD_PORT, description=f"{_name(app)} on non-standard {where}")


_LOCAL_NETS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "0.0.0.0/8",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
        "::1/128",
        "::/128",
    )
)


@lru_cache(maxsize=65_536)
def is_local_address(ip: str) -> bool:
    """True for addresses that are never "the outside": private (RFC 1918, CGNAT, ULA),
    loopback, link-local, multicast and broadcast. Documentation ranges are *not* local here
    (Python's ``is_private`` says they are); unparsable strings are not local either."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if addr.version == 4 and str(addr).endswith(".255"):
        return True  # a directed broadcast in the common /24 layout (NetBIOS, SSDP replies)
    return any(addr.version == net.version and addr in net for net in _LOCAL_NETS)


@lru_cache(maxsize=65_536)
def is_group_address(ip: str) -> bool:
    """True for multicast and broadcast destinations (mDNS, LLMNR, SSDP, NetBIOS)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return addr.is_multicast or (addr.version == 4 and str(addr).endswith(".255"))
