"""The emulation lab: real processes send real traffic to sinks the harness starts, inside an
isolated network (namespaces, Docker, or loopback); the harness captures it, attributes sockets
to processes, labels everything by the actor that ran it, and scores it like a synthetic run.

See :mod:`harness.lab.backend` for the backend contract and :mod:`harness.lab.emulate` for the
orchestration behind ``egress-harness emulate``.
"""

__all__ = ["RUN_ID_HEADER"]

#: The HTTP header in which a lab actor's requests carry the run id (the programs send it, the
#: sinks log and echo it).
RUN_ID_HEADER = "X-Lab-Run"
