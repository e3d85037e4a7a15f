"""HTTP(S) sessions for the lab programs: sockets bound to the client's address, the lab CA as
the only trust anchor, an optional server name for SNI and ``Host`` while connecting to a lab
address, and the run id in a header of every request.

``requests`` cannot bind a source address or set SNI apart from the URL on its own; a transport
adapter passes both to urllib3's connection pools (``source_address``, ``server_hostname``).
The certificate is then checked against the server name, as a browser checks it against the
name it looked up.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter

from scenarios.programs._common import RUN_ID_HEADER, ProgramError

__all__ = ["LabAdapter", "base_url", "gives_up", "request", "session"]

#: Failed requests in a row after which a program stops: a sink that stays unreachable.
_MAX_FAILURES = 3


class LabAdapter(HTTPAdapter):
    """An adapter whose connections bind ``bind`` and present ``server_name`` as SNI."""

    def __init__(self, *, bind: str | None, server_name: str | None) -> None:
        self._bind = bind
        self._server_name = server_name
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        if self._bind:
            pool_kwargs["source_address"] = (self._bind, 0)
        if self._server_name:
            pool_kwargs["server_hostname"] = self._server_name
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def session(
    *,
    run_id: str,
    bind: str | None,
    ca: str | None,
    server_name: str | None,
    user_agent: str | None = None,
) -> requests.Session:
    """A session for one program: bound, trusting only ``ca`` (when given), sending the run id
    (and ``server_name`` as ``Host``) with every request. No proxies from the environment: lab
    traffic goes straight to the lab's sinks."""
    s = requests.Session()
    s.trust_env = False
    adapter = LabAdapter(bind=bind, server_name=server_name)
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    if ca:
        s.verify = ca
    s.headers[RUN_ID_HEADER] = run_id
    if server_name:
        s.headers["Host"] = server_name
    if user_agent:
        s.headers["User-Agent"] = user_agent
    return s


def base_url(scheme: str, address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" if port == default else f"{scheme}://{host}:{port}"


def request(
    s: requests.Session,
    method: str,
    url: str,
    *,
    timeout_s: float,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """One request, the body of the response read; :class:`ProgramError` on any failure to
    talk to the server (HTTP error statuses are returned, not raised: sinks may answer oddly)."""
    try:
        response = s.request(method, url, data=data, headers=headers, timeout=timeout_s)
        _ = response.content
        return response
    except requests.RequestException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ProgramError(f"{method} {url} failed: {reason}") from exc


def gives_up(done: int, failures: int) -> bool:
    """Whether a failed request ends the run, after ``done`` good ones and ``failures`` failed
    in a row (this one included): the first request failing means the sink is unreachable or
    refuses the lab CA's certificate; later ones are tolerated until ``_MAX_FAILURES`` come
    in a row."""
    return done == 0 or failures >= _MAX_FAILURES
