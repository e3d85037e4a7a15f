"""The lab's run-time PKI: a certificate authority and one server certificate made for each run.

:func:`make_certs` creates, with trustme, a CA and a server certificate valid for the lab zone
(``<zone>`` and ``*.<zone>``) and for the addresses of the HTTPS and HTTP sinks, and writes them
into a directory of the run: ``ca.pem`` (what clients trust: the ``{ca}`` placeholder of the actor
programs' arguments), ``server.pem`` (certificate chain) and ``server.key``. Nothing is reused
between runs and nothing is installed into a system trust store.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LabError
from harness.lab.backend import LabPlan, Service

__all__ = ["LabCerts", "make_certs"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LabCerts:
    """Where one run's certificates are."""

    directory: Path
    #: The CA certificate clients verify the sinks against.
    ca: Path
    #: The server certificate chain (leaf first) and its private key, both PEM.
    cert_chain: Path
    key: Path
    #: Names and addresses the server certificate is valid for.
    identities: tuple[str, ...]


def server_identities(plan: LabPlan) -> tuple[str, ...]:
    """The zone, its wildcard, and the HTTPS and HTTP sink addresses."""
    identities = [plan.zone, f"*.{plan.zone}"]
    for service in (Service.HTTPS, Service.HTTP):
        try:
            address = plan.endpoint(service).address
        except KeyError:
            continue
        ipaddress.ip_address(address)  # a plan address is always literal
        if address not in identities:
            identities.append(address)
    return tuple(identities)


def make_certs(plan: LabPlan, directory: Path) -> LabCerts:
    """Make the CA and the server certificate of ``plan`` in ``directory`` (created)."""
    import trustme

    identities = server_identities(plan)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name=f"egress-harness lab {plan.run_id}")
        server = ca.issue_cert(*identities, organization_name="egress-harness lab sinks")
        paths = LabCerts(
            directory=directory,
            ca=directory / "ca.pem",
            cert_chain=directory / "server.pem",
            key=directory / "server.key",
            identities=identities,
        )
        ca.cert_pem.write_to_path(str(paths.ca))
        server.cert_chain_pems[0].write_to_path(str(paths.cert_chain))
        for extra in server.cert_chain_pems[1:]:
            extra.write_to_path(str(paths.cert_chain), append=True)
        server.private_key_pem.write_to_path(str(paths.key))
        paths.key.chmod(0o600)
    except OSError as exc:
        raise LabError(f"cannot write the lab certificates to {directory}: {exc}") from exc
    return paths
