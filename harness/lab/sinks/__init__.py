"""The lab's sinks: one process that serves every endpoint of a lab plan and logs what it saw.

Run as ``python -m harness.lab.sinks --plan FILE --certs DIR --log DIR`` (the orchestrator starts
it on the plan's sink host through :meth:`~harness.lab.backend.LabBackend.start`). Every socket
is bound to its exact lab address, never to ``0.0.0.0`` or ``::``:

* **DNS** (UDP and TCP on the DNS endpoint): authoritative for the lab zone. ``A`` for
  ``<service>.<zone>`` is that service's address, ``ns.<zone>`` the DNS endpoint's, any other
  name in the zone the HTTPS endpoint's; ``TXT``, ``NULL``, ``CNAME`` and ``MX`` answers carry
  downstream data (bytes derived from the query name, as a tunnel server's replies do); other
  types get an empty answer. Names outside the zone get ``NXDOMAIN``, a message that does not
  parse gets ``FORMERR`` (when it is long enough to carry an id) and a query with an opcode
  other than QUERY ``NOTIMP``. Nothing a client sends can stop the server.
* **HTTPS** (TLS with the run's certificate, :mod:`harness.lab.certs`) and **HTTP** on every
  port of their endpoints: ``GET`` returns ``?size=N`` bytes (at most 64 MiB), ``POST`` and
  ``PUT`` read and count the body (``Content-Length`` or chunked) and answer with a short JSON.
* **TCP** on the TCP endpoint's ports: reads to EOF, answering a short ``ACK <bytes>`` line
  whenever the client has paused for a moment after sending (so request/response clients get a
  reply and streaming clients are never blocked).
* **UDP** on the UDP endpoint's ports: counts datagrams and answers each with ``ok``.

Logs (in the ``--log`` directory, flushed line by line):

* ``sinks.jsonl``: one JSON object per connection, UDP flow, DNS query and HTTP request:
  ``ts_ns``, ``service``, ``transport``, client and server address and port, ``bytes_in``,
  ``bytes_out`` (application payload; for HTTPS the decrypted bytes), and ``run_id``: the run id
  when it was seen in a DNS label, an ``X-Lab-Run`` header or the payload, else null.
* ``conn.log`` and ``dns.log`` in Zeek's JSON format (Zeek's field names; ``local_orig`` and
  ``local_resp`` from the plan's internal networks) so that a lab without capture rights still
  has network telemetry, as the sink side saw it (:mod:`harness.ingest.zeek` reads them).
  Byte counts are application payload bytes; packet counts are not known and are omitted.

The process prints ``READY`` and a JSON list of its bound sockets on stdout once every socket
is bound; SIGTERM or SIGINT stops it cleanly (open connections are logged as they stand, logs
flushed, exit status 0). A socket that cannot be bound is one line on stderr and exit status 1.
"""

# The package's modules: process (the process: Sinks, main), dns (the DNS answers), web (HTTPS
# and HTTP), raw (TCP, DNS over TCP, UDP), shared (what the servers share), logs (sinks.jsonl,
# conn.log, dns.log), owner (OwnerLookup) and planfile (the --plan file).

from harness.lab.sinks.dns import DnsAnswer, answer_dns
from harness.lab.sinks.logs import SinkLog
from harness.lab.sinks.owner import OwnerLookup
from harness.lab.sinks.planfile import plan_from_dict, plan_to_dict
from harness.lab.sinks.process import Sinks, main
from harness.lab.sinks.web import MAX_GET_BYTES

__all__ = [
    "MAX_GET_BYTES",
    "DnsAnswer",
    "OwnerLookup",
    "SinkLog",
    "Sinks",
    "answer_dns",
    "main",
    "plan_from_dict",
    "plan_to_dict",
]
