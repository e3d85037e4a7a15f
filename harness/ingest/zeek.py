"""Read Zeek ``conn``, ``dns``, ``http`` and ``ssl`` logs as the project's events.

:func:`read_zeek` (or :class:`ZeekReader`) takes any number of Zeek logs, in Zeek's TSV format
(``#separator``, ``#fields``, ``#types`` headers; ``-`` unset, ``(empty)`` empty, ``\\xNN``
escapes) or JSON (one object per line, ``ts`` as epoch seconds or ISO 8601), plain or
gzip-compressed (detected from the content, not the name), rotated or not, and yields events in
event-time order:

* **conn** -> one final :class:`~harness.events.NetworkFlow` per connection (TCP and UDP; ICMP
  and other protocols are counted and ignored): ``start`` = ``ts``, ``end`` = ``ts + duration``,
  ``ts_ns`` = end (the record is the connection's last word, like a flow export), bytes =
  ``orig_bytes``/``resp_bytes`` (payload bytes, as the pcap reader counts them), packets =
  ``orig_pkts``/``resp_pkts``, ``app_protocol`` from Zeek's ``service`` (identified by Zeek's
  dynamic protocol detection from payload; a comma list takes the first of quic, ssl/tls, http,
  smb, dns it contains), ``flow_id`` = ``zeek:<uid>``, ``process_guid`` = None.
  ``direction`` comes from ``local_orig``/``local_resp`` when either is true, otherwise (unset, or
  both false as when Zeek's ``Site::local_nets`` is not configured) from the address plan
  (:class:`~harness.ingest.pcap.AddressPlan`, ``internal_networks``): internal when both ends are
  local, outbound when only the originator is, inbound when only the responder is, outbound from
  the originator when neither is. ``host`` is the local endpoint's *address* (the originator,
  except inbound): Zeek does not know host names; :mod:`harness.ingest.join` names hosts.
* ``server_name`` is the ``ssl.log`` ``server_name`` of the same ``uid``, else the ``http.log``
  ``host`` (without a port), else the name whose ``dns.log`` answer resolved the responder's
  address at most ``dns_name_window_s`` before the connection started. An http/ssl record is
  kept for its ``uid`` for ``uid_window_s`` of log time: a connection that ends later than that
  after its first HTTP request or TLS handshake loses the name (and falls back to DNS).
* **dns** -> :class:`~harness.events.DnsQuery` at the query's ``ts`` with ``query``,
  ``qtype_name``, ``rcode_name`` (``NOANSWER`` when no response was seen), ``answers``, process
  None and ``host`` the local end's address. ``dns.log`` has no message sizes; they are
  *estimated* from the wire format: query = 12 (header) + name + 2 + 4 (type, class) + 11
  (EDNS0 OPT, which current resolvers send), response = the query plus per answer 12 bytes of
  fixed fields and its data (4 for an IPv4 address, 16 for IPv6, else its text length + 2); 0
  without a response. The same estimate the synthetic world uses. Records without a query name
  are counted and ignored.
* **Anomalies**: Zeek logs "no SYN seen, just midstream traffic" (``OTH``) for connections that
  were running when Zeek started, that outlived its inactivity timeout, or whose other direction
  the sensor does not see; these are normal and a conn record cannot tell them from data sent
  without a handshake. Only the one pattern the pcap reader also reports is kept: TCP with no
  SYN or SYN-ACK in ``history``, data from the originator, none from the responder, and a reset
  from the responder (``history`` with ``D`` and ``r`` but no ``S``, ``s``, ``H``, ``h``, ``d``),
  starting at least ``no_handshake_grace_s`` after the first record read: a
  :class:`~harness.events.ProtocolAnomaly` ``no_handshake`` at the connection's end.

Order and memory: each file is read as a stream; files are merged by their records' times
(conn: end, others: ``ts``) and a reorder buffer of ``reorder_window_s`` of log time puts
records that Zeek wrote out of order (it writes a connection when it ends or times out) back in
order. A record later than that is still emitted and counted in :attr:`ZeekStats.late`. Memory
is bounded by the records of one reorder window plus the uid and DNS-answer maps of their
windows.

Bad input: a file that cannot be opened or is not a Zeek log at all raises
:class:`ZeekInputError` (an :class:`~harness.errors.InputError`) when the reader is created.
Inside a log, a wrong header (``#fields`` without the fields a log type needs, ``#types`` not
matching ``#fields``), a line with the wrong number of fields, a bad number, time, port or
address, a line that is not a JSON object, or damaged compression is reported to
``on_warning`` (default: kept in :attr:`ZeekReader.warnings`) as a :class:`ZeekInputError`
naming the file and line; the record (under a wrong header: every record until the next
header) is skipped and counted per reason in :attr:`ZeekReader.stats`, and reading continues.
A Zeek log of another type (``weird``, ``files``, ...) is ignored with a warning.
"""

from __future__ import annotations

import contextlib
import gzip
import heapq
import io
import json
import os
import re
import socket
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any, cast

from harness.errors import InputError, InvalidParameterError
from harness.events import (
    NS_PER_S,
    AnomalyKind,
    AppProtocol,
    Direction,
    DnsQuery,
    Event,
    NetworkFlow,
    ProtocolAnomaly,
    Transport,
)
from harness.ingest._flows import DEFAULT_INTERNAL_NETWORKS, AddressPlan

__all__ = ["ZeekConfig", "ZeekInputError", "ZeekReader", "ZeekStats", "read_zeek"]

_MAX_KEPT_WARNINGS = 100
_SNIFF_BYTES = 1 << 16
LOG_TYPES = ("conn", "dns", "http", "ssl")
#: Fields a log type cannot be read without.
_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "conn": ("ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto"),
    "dns": ("ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "query"),
    "http": ("ts", "uid", "host"),
    "ssl": ("ts", "uid", "server_name"),
}
#: Fields a header must name but a record may leave unset (no SNI, no Host, no query).
_MAY_BE_UNSET = frozenset({"query", "host", "server_name"})
#: Fields read per log type (others are ignored).
_WANTED: Mapping[str, tuple[str, ...]] = {
    "conn": _REQUIRED["conn"]
    + (
        "uid",
        "service",
        "duration",
        "orig_bytes",
        "resp_bytes",
        "conn_state",
        "local_orig",
        "local_resp",
        "history",
        "orig_pkts",
        "resp_pkts",
    ),
    "dns": _REQUIRED["dns"]
    + ("uid", "proto", "qtype", "qtype_name", "rcode", "rcode_name", "answers"),
    "http": _REQUIRED["http"],
    "ssl": _REQUIRED["ssl"],
}
#: Keys that identify a JSON record's log type when neither ``_path`` nor the file name does.
_JSON_HINTS: tuple[tuple[str, str], ...] = (
    ("conn_state", "conn"),
    ("orig_bytes", "conn"),
    ("qtype_name", "dns"),
    ("trans_id", "dns"),
    ("trans_depth", "http"),
    ("method", "http"),
    ("server_name", "ssl"),
    ("cipher", "ssl"),
)
_SERVICE_APPS: tuple[tuple[str, AppProtocol], ...] = (
    ("quic", AppProtocol.QUIC),
    ("ssl", AppProtocol.TLS),
    ("tls", AppProtocol.TLS),
    ("http", AppProtocol.HTTP),
    ("smb", AppProtocol.SMB),
    ("dns", AppProtocol.DNS),
)
_SERVICE_APP = dict(_SERVICE_APPS)
_TRANSPORTS = {"tcp": Transport.TCP, "udp": Transport.UDP}
_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


class ZeekInputError(InputError):
    """A Zeek log that cannot be read, or a bad record inside one.

    ``path`` and ``line`` (1-based, or ``None`` for the whole file) locate it.
    """

    def __init__(self, path: str, line: int | None, message: str) -> None:
        self.path = path
        self.line = line
        where = f"{path!r}" if line is None else f"{path!r} line {line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ZeekConfig:
    """Windows and policies of the Zeek reader (seconds)."""

    internal_networks: tuple[str, ...] = DEFAULT_INTERNAL_NETWORKS
    #: Records written up to this much out of order (by their conn end / ts) are reordered.
    reorder_window_s: float = 900.0
    #: How long an http/ssl record's name waits for its connection's conn record.
    uid_window_s: float = 3600.0
    #: A DNS answer names a responder address for connections starting this long after it.
    dns_name_window_s: float = 3600.0
    #: Connections starting this soon after the first record are never ``no_handshake``.
    no_handshake_grace_s: float = 60.0
    #: Report the ``no_handshake`` pattern described in the module docstring.
    anomalies: bool = True

    def __post_init__(self) -> None:
        for name in ("reorder_window_s", "uid_window_s", "dns_name_window_s"):
            value = getattr(self, name)
            if not value > 0:
                raise InvalidParameterError(name, value, "a positive number of seconds")
        if not self.no_handshake_grace_s >= 0:
            raise InvalidParameterError(
                "no_handshake_grace_s", self.no_handshake_grace_s, "zero or more seconds"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ZeekStats:
    """What a read saw and what it had to skip."""

    files: tuple[str, ...]
    #: Files that are Zeek logs of a type this reader does not use.
    ignored_files: tuple[str, ...]
    #: Records read and understood, per log type.
    records: dict[str, int]
    #: Records skipped because they were damaged or unreadable, per reason.
    reasons: dict[str, int]
    #: Records read but not turned into events by design (ICMP, DNS without query), per reason.
    ignored: dict[str, int]
    #: Records that came later than the reorder window allows (emitted out of order).
    late: int
    events: dict[str, int]
    #: Flows named, per source of the name (``ssl``, ``http``, ``dns``).
    server_names: dict[str, int]
    warnings: int

    @property
    def skipped(self) -> int:
        """Records lost to damage (the sum of :attr:`reasons`)."""
        return sum(self.reasons.values())


# -- value parsing ------------------------------------------------------------------------------


class _Bad(ValueError):
    """A field value that does not parse; the message names the field and the value."""


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "\\x" in text else text


def _decimal_ns(text: str, name: str) -> int:
    whole, dot, frac = text.partition(".")
    if not text.isascii() or not whole.isdigit() or (dot and not frac.isdigit()) or len(frac) > 9:
        raise _Bad(f"bad {name} {text!r}: expected seconds like 1613755368.960989")
    return int(whole) * NS_PER_S + int(frac.ljust(9, "0") if frac else "0")


def _time_ns(value: object, name: str) -> int:
    if isinstance(value, str):
        if value[:1].isdigit() and "T" not in value:
            return _decimal_ns(value, name)
        try:
            text = value.replace("Z", "+00:00")
            dt = datetime.fromisoformat(text)
        except ValueError as exc:
            raise _Bad(f"bad {name} {value!r}: expected epoch seconds or ISO 8601") from exc
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
        ns = (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1000
        if ns < 0:
            raise _Bad(f"bad {name} {value!r}: before 1970")
        return ns
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value < 1e11:  # NaN fails too
            raise _Bad(f"bad {name} {value!r}: expected seconds since 1970")
        return round(value * 1_000_000) * 1000
    raise _Bad(f"bad {name} {value!r}: expected a time")


def _count(value: object, name: str, *, limit: int = 1 << 63) -> int:
    if isinstance(value, str):
        if not value.isascii() or not value.isdigit():
            raise _Bad(f"bad {name} {value!r}: expected a non-negative integer")
        n = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        n = value
    else:
        raise _Bad(f"bad {name} {value!r}: expected a non-negative integer")
    if not 0 <= n < limit:
        raise _Bad(f"bad {name} {value!r}: out of range 0..{limit - 1}")
    return n


def _interval_ns(value: object, name: str) -> int:
    if isinstance(value, str):
        return _decimal_ns(value, name)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value < 1e9:
            raise _Bad(f"bad {name} {value!r}: expected a non-negative number of seconds")
        return round(value * 1_000_000) * 1000
    raise _Bad(f"bad {name} {value!r}: expected seconds")


def _bool(value: object, name: str) -> bool:
    if value in ("T", True):
        return True
    if value in ("F", False):
        return False
    raise _Bad(f"bad {name} {value!r}: expected T or F")


def _text(value: object, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Bad(f"bad {name} {value!r}: expected a string")


_ADDRS: dict[str, bytes] = {}


def _addr(value: object, name: str) -> tuple[str, bytes]:
    if not isinstance(value, str):
        raise _Bad(f"bad {name} {value!r}: expected an IP address")
    packed = _ADDRS.get(value)
    if packed is None:
        try:
            packed = socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
        except (OSError, ValueError) as exc:
            raise _Bad(f"bad {name} {value!r}: expected an IP address") from exc
        if len(_ADDRS) > 65_536:
            _ADDRS.clear()
        _ADDRS[value] = packed
    return value, packed


# -- files --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Header:
    sep: str = "\t"
    set_sep: str = ","
    empty: str = "(empty)"
    unset: str = "-"
    log: str | None = None
    fields: list[str] | None = None
    #: (field, index) of the wanted fields present, or None under a wrong header.
    index: list[tuple[str, int]] | None = None
    types_ok: bool = True


@dataclass(slots=True)
class _Record:
    """One parsed record: its log type, where it is, and its wanted fields (``None``: unset)."""

    log: str
    line: int
    values: dict[str, Any]


def _log_from_name(path: str) -> str | None:
    base = os.path.basename(path).lower()
    for log in LOG_TYPES:
        if base == log or base.startswith((log + ".", log + "_")):
            return log
    return None


def _log_from_keys(doc: Mapping[str, Any]) -> str | None:
    for key, log in _JSON_HINTS:
        if key in doc:
            return log
    return None


def _flatten(doc: dict[str, Any]) -> dict[str, Any]:
    """Flat dotted keys (Zeek's own JSON) from nested objects (as some shippers write them)."""
    if not any(isinstance(v, dict) for v in doc.values()):
        return doc
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            for sub, inner in _flatten(value).items():
                out[f"{key}.{sub}"] = inner
        else:
            out[key] = value
    return out


def _open_binary(path: str) -> IO[bytes]:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    except OSError as exc:
        raise ZeekInputError(path, None, f"cannot open: {exc.strerror or exc}") from exc
    try:
        magic = raw.read(2)
        raw.seek(0)
    except OSError as exc:
        raw.close()
        raise ZeekInputError(path, None, f"cannot read: {exc.strerror or exc}") from exc
    if magic == b"\x1f\x8b":
        raw.close()
        return cast("IO[bytes]", gzip.open(path, "rb"))
    return raw


class _Source:
    """One log file: sniffed at construction, read as a stream of records by :meth:`records`."""

    def __init__(self, path: str, reader: ZeekReader) -> None:
        self.path = path
        self.reader = reader
        self.fmt = "tsv"
        self.log: str | None = None
        self._header: _Header | None = None
        handle = _open_binary(path)
        try:
            head = handle.read(_SNIFF_BYTES)
        except (OSError, EOFError, zlib.error) as exc:
            raise ZeekInputError(path, None, f"cannot decompress: {exc}") from exc
        finally:
            handle.close()
        text = head.decode("utf-8", errors="replace")
        first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
        if first.startswith("#separator"):
            self.fmt = "tsv"
            for line in text.split("\n"):
                if line.startswith("#path"):
                    self.log = line.split(line[5:6] or "\t", 1)[-1].strip() or None
                    break
                if not line.startswith("#"):
                    break
            self.log = self.log or _log_from_name(path)
        elif first.startswith("{"):
            self.fmt = "json"
            self.log = _log_from_name(path)
            try:
                doc = json.loads(first)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                if isinstance(doc.get("_path"), str):
                    self.log = doc["_path"]
                elif self.log is None:
                    self.log = _log_from_keys(_flatten(doc))
        elif not first:
            self.log = _log_from_name(path)  # an empty log: nothing to read
        else:
            raise ZeekInputError(
                path,
                1,
                f"not a Zeek log: starts with {first[:40]!r}; expected a '#separator' header "
                "(TSV) or a JSON object per line",
            )

    def records(self) -> Iterator[_Record]:
        handle = _open_binary(self.path)
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="\n")
        number = 0
        try:
            lines = iter(text)
            while True:
                try:
                    line = next(lines)
                except StopIteration:
                    break
                except (OSError, EOFError, zlib.error) as exc:
                    self.reader._skip(
                        "damaged compression",
                        ZeekInputError(
                            self.path, number + 1, f"compressed data damaged ({exc}); the rest "
                            "of the file is skipped",
                        ),
                    )  # fmt: skip
                    break
                number += 1
                rec = self._tsv(line, number) if self.fmt == "tsv" else self._json(line, number)
                if rec is not None:
                    yield rec
        finally:
            with contextlib.suppress(OSError, EOFError, zlib.error):
                text.close()

    # -- TSV -------------------------------------------------------------------------------

    def _tsv(self, line: str, number: int) -> _Record | None:
        h = self._header
        if h is None:
            h = self._header = _Header(log=self.log)
        complete = line.endswith("\n")
        line = line.rstrip("\n").rstrip("\r") if complete else line
        if not line:
            return None
        if line.startswith("#"):
            self._directive(h, line, number)
            return None
        if h.index is None:
            self.reader._skip("no usable header", None)
            return None
        values = line.split(h.sep)
        assert h.fields is not None
        if len(values) != len(h.fields):
            what = "truncated line" if not complete else "wrong field count"
            self.reader._skip(
                what,
                ZeekInputError(
                    self.path, number, f"{what}: {len(values)} fields, the #fields header "
                    f"names {len(h.fields)}; record skipped",
                ),
            )  # fmt: skip
            return None
        out: dict[str, Any] = {}
        unset, empty = h.unset, h.empty
        for name, i in h.index:
            v = values[i]
            if v == unset:
                out[name] = None
            elif name == "answers":
                out[name] = [] if v == empty else [_unescape(x) for x in v.split(h.set_sep)]
            elif v == empty:
                out[name] = ""
            else:
                out[name] = v if "\\x" not in v else _unescape(v)
        assert h.log is not None
        return _Record(log=h.log, line=number, values=out)

    def _directive(self, h: _Header, line: str, number: int) -> None:
        if line.startswith("#separator"):
            h.sep = _unescape(line[len("#separator") :].strip()) or "\t"
            return
        key, _, rest = line.partition(h.sep)
        if key == "#set_separator":
            h.set_sep = rest
        elif key == "#empty_field":
            h.empty = rest
        elif key == "#unset_field":
            h.unset = rest
        elif key == "#path":
            h.log = rest or h.log
            h.index = None
            h.fields = None
        elif key == "#fields":
            self._fields(h, rest.split(h.sep), number)
        elif key == "#types":
            types = rest.split(h.sep)
            if h.fields is not None and len(types) != len(h.fields):
                h.index = None
                self.reader._skip(
                    "wrong header",
                    ZeekInputError(
                        self.path, number, f"wrong header: #types names {len(types)} types for "
                        f"{len(h.fields)} #fields; records until the next header are skipped",
                    ),
                )  # fmt: skip
        # #open, #close and other comments carry nothing the reader needs.

    def _fields(self, h: _Header, names: list[str], number: int) -> None:
        h.fields = names
        h.index = None
        log = h.log
        if log is None:
            log = h.log = self.log
        if log is None or log not in _REQUIRED:
            self.reader._skip(
                "wrong header",
                ZeekInputError(
                    self.path, number, f"wrong header: log type {log!r} is not one of "
                    f"{', '.join(LOG_TYPES)}; records until the next header are skipped",
                ),
            )  # fmt: skip
            return
        missing = [f for f in _REQUIRED[log] if f not in names]
        if missing:
            self.reader._skip(
                "wrong header",
                ZeekInputError(
                    self.path, number, f"wrong header: #fields of a {log} log lacks "
                    f"{', '.join(missing)}; records until the next header are skipped",
                ),
            )  # fmt: skip
            return
        position = {name: i for i, name in enumerate(names)}
        h.index = [(f, position[f]) for f in _WANTED[log] if f in position]

    # -- JSON ------------------------------------------------------------------------------

    def _json(self, line: str, number: int) -> _Record | None:
        if not line.strip():
            return None
        try:
            doc = json.loads(line)
        except ValueError as exc:
            what = "truncated line" if not line.endswith("\n") else "bad JSON"
            self.reader._skip(
                what, ZeekInputError(self.path, number, f"{what}: {exc}; record skipped")
            )
            return None
        if not isinstance(doc, dict):
            self.reader._skip(
                "bad JSON",
                ZeekInputError(
                    self.path, number, f"expected a JSON object, got {type(doc).__name__}; "
                    "record skipped",
                ),
            )  # fmt: skip
            return None
        doc = _flatten(doc)
        path_value = doc.get("_path")
        log = path_value if isinstance(path_value, str) else self.log
        if log is None:
            log = self.log = _log_from_keys(doc)
        if log is None or log not in _REQUIRED:
            self.reader._ignore(f"{log or 'unknown'} record")
            return None
        wanted = _WANTED[log]
        out = {name: doc.get(name) for name in wanted}
        return _Record(log=log, line=number, values=out)


# -- the reader ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    """A parsed record waiting in the reorder buffer: conn and dns records carry their event
    (a conn's server name is filled in when it leaves the buffer), http/ssl their uid name."""

    key: int
    rank: int
    source: str
    line: int
    log: str
    event: Event | None = None
    uid: str | None = None
    name: str | None = None
    anomaly: bool = False
    history: str = ""


class ZeekReader:
    """Iterate over the events of some Zeek logs (see the module docstring). Files are checked
    when the reader is created; :attr:`stats` is complete once the iterator is exhausted."""

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        config: ZeekConfig | None = None,
        on_warning: Callable[[ZeekInputError], None] | None = None,
    ) -> None:
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        self.config = config or ZeekConfig()
        self.paths = tuple(os.fspath(p) for p in paths)
        self.warnings: list[ZeekInputError] = []
        self._on_warning = on_warning
        self._warning_count = 0
        self._plan = AddressPlan(self.config.internal_networks)
        self._records: dict[str, int] = {}
        self._reasons: dict[str, int] = {}
        self._ignored: dict[str, int] = {}
        self._events: dict[str, int] = {}
        self._names: dict[str, int] = {}
        self._late = 0
        self._first_ts: int | None = None
        self._sources: list[_Source] = []
        ignored: list[str] = []
        for path in self.paths:
            src = _Source(path, self)
            if src.log is None or src.log in _REQUIRED:
                self._sources.append(src)
            else:
                ignored.append(path)
                self._warn(
                    ZeekInputError(
                        path, None, f"a Zeek {src.log!r} log, not one of "
                        f"{', '.join(LOG_TYPES)}; ignored",
                    )
                )  # fmt: skip
        self._ignored_files = tuple(ignored)
        self._iter = self._run()

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        return next(self._iter)

    @property
    def stats(self) -> ZeekStats:
        return ZeekStats(
            files=tuple(s.path for s in self._sources),
            ignored_files=self._ignored_files,
            records=dict(self._records),
            reasons=dict(self._reasons),
            ignored=dict(self._ignored),
            late=self._late,
            events=dict(self._events),
            server_names=dict(self._names),
            warnings=self._warning_count,
        )

    # -- bookkeeping -------------------------------------------------------------------------

    def _warn(self, err: ZeekInputError) -> None:
        self._warning_count += 1
        if self._on_warning is not None:
            self._on_warning(err)
        elif len(self.warnings) < _MAX_KEPT_WARNINGS:
            self.warnings.append(err)

    def _skip(self, reason: str, err: ZeekInputError | None) -> None:
        self._reasons[reason] = self._reasons.get(reason, 0) + 1
        if err is not None:
            self._warn(err)

    def _ignore(self, reason: str) -> None:
        self._ignored[reason] = self._ignored.get(reason, 0) + 1

    # -- records to items ---------------------------------------------------------------------

    def _items(self, index: int, src: _Source) -> Iterator[tuple[int, int, int, int, _Item]]:
        seq = 0
        for rec in src.records():
            try:
                item = self._parse(src.path, rec)
            except _Bad as exc:
                self._skip(
                    "bad value", ZeekInputError(src.path, rec.line, f"{exc}; record skipped")
                )
                continue
            if item is None:
                continue
            self._records[rec.log] = self._records.get(rec.log, 0) + 1
            seq += 1
            yield item.key, item.rank, index, seq, item

    def _parse(self, path: str, rec: _Record) -> _Item | None:
        v = rec.values
        for key in _REQUIRED[rec.log]:
            if v.get(key) is None and key not in _MAY_BE_UNSET:
                raise _Bad(f"required field {key} is unset")
        ts = _time_ns(v["ts"], "ts")
        if self._first_ts is None or ts < self._first_ts:
            self._first_ts = ts
        if rec.log == "conn":
            return self._conn(path, rec, ts)
        if rec.log == "dns":
            return self._dns(path, rec, ts)
        uid = _text(v["uid"], "uid")
        raw = v.get("server_name") if rec.log == "ssl" else v.get("host")
        name: str | None = None
        if raw is not None:
            text = _text(raw, "server_name" if rec.log == "ssl" else "host")
            if rec.log == "http" and text.count(":") == 1:
                text = text.rsplit(":", 1)[0]
            name = text.strip().rstrip(".").lower() or None
        return _Item(key=ts, rank=0, source=path, line=rec.line, log=rec.log, uid=uid, name=name)

    def _direction(self, v: Mapping[str, Any], orig: bytes, resp: bytes) -> tuple[Direction, bool]:
        """(direction, whether the originator is the local end)."""
        lo = v.get("local_orig")
        lr = v.get("local_resp")
        lo_b = _bool(lo, "local_orig") if lo is not None else False
        lr_b = _bool(lr, "local_resp") if lr is not None else False
        if not (lo_b or lr_b):
            lo_b = self._plan.is_internal(orig)
            lr_b = self._plan.is_internal(resp)
        if lo_b and lr_b:
            return Direction.INTERNAL, True
        if lr_b:
            return Direction.INBOUND, False
        return Direction.OUTBOUND, True

    def _conn(self, path: str, rec: _Record, ts: int) -> _Item | None:
        v = rec.values
        proto = _text(v["proto"], "proto").lower()
        if proto not in ("tcp", "udp"):
            self._ignore(f"{proto} connection")
            return None
        orig, orig_p = _addr(v["id.orig_h"], "id.orig_h")
        resp, resp_p = _addr(v["id.resp_h"], "id.resp_h")
        sport = _count(v["id.orig_p"], "id.orig_p", limit=65_536)
        dport = _count(v["id.resp_p"], "id.resp_p", limit=65_536)
        dur = v.get("duration")
        end = ts + (_interval_ns(dur, "duration") if dur is not None else 0)
        counts = []
        for name in ("orig_bytes", "resp_bytes", "orig_pkts", "resp_pkts"):
            value = v.get(name)
            counts.append(0 if value is None or value == "" else _count(value, name))
        direction, orig_local = self._direction(v, orig_p, resp_p)
        uid = v.get("uid")
        uid = _text(uid, "uid") if uid is not None else None
        service = v.get("service")
        app = AppProtocol.UNKNOWN
        if service:
            text = _text(service, "service")
            hit = _SERVICE_APP.get(text)
            if hit is not None:
                app = hit
            else:
                parts = {p.strip().lower() for p in text.split(",")}
                for label, proto_app in _SERVICE_APPS:
                    if label in parts:
                        app = proto_app
                        break
        flow = NetworkFlow(
            event_id="",
            ts_ns=end,
            flow_id=f"zeek:{uid}" if uid else "",
            host=orig if orig_local else resp,
            process_guid=None,
            transport=_TRANSPORTS[proto],
            src_ip=orig,
            src_port=sport,
            dst_ip=resp,
            dst_port=dport,
            direction=direction,
            app_protocol=app,
            start_ns=ts,
            end_ns=end,
            bytes_out=counts[0],
            bytes_in=counts[1],
            packets_out=counts[2],
            packets_in=counts[3],
        )
        anomaly = False
        history = v.get("history")
        if self.config.anomalies and proto == "tcp" and isinstance(history, str):
            anomaly = "D" in history and "r" in history and not any(c in history for c in "SsHhd")
        return _Item(
            key=end, rank=1, source=path, line=rec.line, log="conn", event=flow, uid=uid,
            anomaly=anomaly, history=history if isinstance(history, str) else "",
        )  # fmt: skip

    def _dns(self, path: str, rec: _Record, ts: int) -> _Item | None:
        v = rec.values
        query = v.get("query")
        if query is None or query == "":
            self._ignore("dns record without query")
            return None
        query = _text(query, "query")
        orig, orig_p = _addr(v["id.orig_h"], "id.orig_h")
        resp, resp_p = _addr(v["id.resp_h"], "id.resp_h")
        _count(v["id.orig_p"], "id.orig_p", limit=65_536)
        _count(v["id.resp_p"], "id.resp_p", limit=65_536)
        local_orig = self._plan.is_internal(orig_p) or not self._plan.is_internal(resp_p)
        qtype = v.get("qtype_name")
        if qtype is None:
            code = v.get("qtype")
            qtype = f"TYPE{_count(code, 'qtype')}" if code is not None else "UNKNOWN"
        rcode = v.get("rcode_name")
        if rcode is None:
            code = v.get("rcode")
            rcode = f"RCODE{_count(code, 'rcode')}" if code is not None else "NOANSWER"
        raw_answers = v.get("answers")
        if raw_answers is None:
            answers: tuple[str, ...] = ()
        elif isinstance(raw_answers, list):
            answers = tuple(_text(a, "answers") for a in raw_answers)
        else:
            answers = tuple(_text(raw_answers, "answers").split(","))
        query_bytes = 12 + len(query) + 2 + 4 + 11
        response_bytes = 0
        if rcode != "NOANSWER":
            response_bytes = query_bytes + sum(12 + _rdata_len(a) for a in answers)
        event = DnsQuery(
            event_id="",
            ts_ns=ts,
            host=orig if local_orig else resp,
            process_guid=None,
            src_ip=orig,
            resolver_ip=resp,
            query=query,
            qtype=_text(qtype, "qtype_name"),
            rcode=_text(rcode, "rcode_name"),
            answers=answers,
            query_bytes=query_bytes,
            response_bytes=response_bytes,
        )
        return _Item(key=ts, rank=0, source=path, line=rec.line, log="dns", event=event)

    # -- the ordered stream ---------------------------------------------------------------------

    def _run(self) -> Iterator[Event]:
        cfg = self.config
        window = int(cfg.reorder_window_s * NS_PER_S)
        uid_window = int(cfg.uid_window_s * NS_PER_S)
        dns_window = int(cfg.dns_name_window_s * NS_PER_S)
        merged = heapq.merge(*(self._items(i, s) for i, s in enumerate(self._sources)))
        buffer: list[tuple[int, int, int, int, _Item]] = []
        uid_names: dict[str, tuple[str, str]] = {}  # uid -> (name, source log)
        uid_queue: deque[tuple[int, str]] = deque()
        addr_names: dict[str, deque[tuple[int, str]]] = {}
        addr_queue: deque[tuple[int, str]] = deque()
        n = 0
        last = -1
        high = -1

        setattr_ = object.__setattr__
        grace = int(cfg.no_handshake_grace_s * NS_PER_S)

        def emit(item: _Item) -> list[Event]:
            """Apply one record in time order; the events it completes (usually one)."""
            nonlocal n, last
            key = item.key
            if key < last:
                self._late += 1
            else:
                last = key
            while uid_queue and uid_queue[0][0] < key - uid_window:
                uid_names.pop(uid_queue.popleft()[1], None)
            while addr_queue and addr_queue[0][0] < key - dns_window - uid_window:
                ts0, addr = addr_queue.popleft()
                q = addr_names.get(addr)
                if q is not None and q and q[-1][0] <= ts0:
                    del addr_names[addr]
            event = item.event
            if event is None:  # http or ssl: a name for the connection with this uid
                if item.uid is not None and item.name is not None:
                    old = uid_names.get(item.uid)
                    if old is None or item.log == "ssl" or old[1] != "ssl":
                        uid_names[item.uid] = (item.name, item.log)
                        uid_queue.append((key, item.uid))
                return []
            n += 1
            eid = f"zeek:{n}"
            # The event is still private to the reader: set its id in place.
            setattr_(event, "event_id", eid)
            if isinstance(event, DnsQuery):
                for a in event.answers:
                    if _looks_like_address(a):
                        slot = addr_names.setdefault(a, deque(maxlen=8))
                        slot.append((event.ts_ns, event.query.rstrip(".").lower()))
                        addr_queue.append((event.ts_ns, a))
                self._count_event("dns_query")
                return [event]
            assert isinstance(event, NetworkFlow)
            name: str | None = None
            source = ""
            if item.uid is not None and item.uid in uid_names:
                name, source = uid_names.pop(item.uid)
            else:
                seen = addr_names.get(event.dst_ip)
                if seen:
                    for t, qname in reversed(seen):
                        if event.start_ns - dns_window <= t <= event.start_ns:
                            name, source = qname, "dns"
                            break
            if name is not None:
                self._names[source] = self._names.get(source, 0) + 1
                setattr_(event, "server_name", name)
            if not event.flow_id:
                setattr_(event, "flow_id", eid)
            self._count_event("network_flow")
            if not (
                item.anomaly
                and self._first_ts is not None
                and event.start_ns >= self._first_ts + grace
            ):
                return [event]
            n += 1
            self._count_event("protocol_anomaly")
            return [
                event,
                ProtocolAnomaly(
                    event_id=f"zeek:{n}",
                    ts_ns=event.ts_ns,
                    host=event.host,
                    transport=event.transport,
                    src_ip=event.src_ip,
                    src_port=event.src_port,
                    dst_ip=event.dst_ip,
                    dst_port=event.dst_port,
                    anomaly=AnomalyKind.NO_HANDSHAKE,
                    detail=(
                        f"TCP data without a handshake, answered with a reset (Zeek history "
                        f"{item.history!r}, {item.source} line {item.line})"
                    ),
                    app_protocol=event.app_protocol,
                ),
            ]

        pop = heapq.heappop
        push = heapq.heappush
        for entry in merged:
            if entry[0] > high:
                high = entry[0]
            push(buffer, entry)
            while buffer[0][0] < high - window:
                yield from emit(pop(buffer)[4])
        while buffer:
            yield from emit(pop(buffer)[4])

    def _count_event(self, kind: str) -> None:
        self._events[kind] = self._events.get(kind, 0) + 1


def _looks_like_address(text: str) -> bool:
    if ":" in text:
        return text.count(":") >= 2 and all(c in "0123456789abcdefABCDEF:." for c in text)
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts)


def _rdata_len(answer: str) -> int:
    if _looks_like_address(answer):
        return 16 if ":" in answer else 4
    return len(answer) + 2


def read_zeek(
    paths: Sequence[str | os.PathLike[str]],
    *,
    on_warning: Callable[[ZeekInputError], None] | None = None,
    config: ZeekConfig | None = None,
) -> ZeekReader:
    """The events of the Zeek logs at ``paths`` in time order (see :class:`ZeekReader`); files
    that cannot be opened or are not Zeek logs raise :class:`ZeekInputError` at once."""
    return ZeekReader(paths, config=config, on_warning=on_warning)
