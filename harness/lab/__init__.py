"""The emulation lab: real processes send real traffic to sinks the harness starts, inside an
isolated network (namespaces, Docker, or loopback); the harness captures it, attributes sockets
to processes, labels everything by the actor that ran it, and scores it like a synthetic run.

See :mod:`harness.lab.backend` for the backend contract and :mod:`harness.lab.emulate` for the
orchestration behind ``egress-harness emulate``.
"""
