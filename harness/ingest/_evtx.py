"""EVTX (Windows XML event log) files, chunk by chunk: a damage-tolerant reader and a writer.

**Reading.** An EVTX file is a 4 KiB file header (``ElfFile``) followed by 64 KiB chunks
(``ElfChnk``), each holding its own binary-XML records, string table and templates, so one chunk
can be decoded without the others. :func:`iter_chunks` walks the file a chunk at a time and hands
each chunk, behind a fresh file header that declares only that chunk, to the ``evtx`` package
(pyevtx-rs, the Rust parser) with ``skip_errors=True``. A chunk that the parser rejects costs only
its own records: the damage is reported through ``warn`` with the chunk's index and byte offset,
the records it held (from the chunk header's record numbers when they are plausible, else from the
record signatures found in it) are counted as skipped, and the walk goes on with the next chunk.
All-zero chunks (space preallocated by Windows) are skipped silently; a last chunk cut short is
padded and decoded as far as it goes. Memory is one chunk plus its decoded records.

**Writing.** :class:`EvtxWriter` writes records the way Windows does: each record is a
binary-XML template instance whose template (``<Event><System>…<EventData><Data Name=…>``) is
defined in the chunk on first use and referenced afterwards, with typed substitution values
(``UInt16`` event id, ``FILETIME`` time, ``GUID``, ``UInt32``, ``Boolean``, strings), CRC32
checksums on file header, chunk header and records. It exists so that tests, and renderers of
synthetic scenarios, can produce real EVTX files without a Windows machine; its output is checked
by decoding it with the independent ``evtx`` parser.
"""

from __future__ import annotations

import io
import struct
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

__all__ = [
    "CHUNK_SIZE",
    "EVTX_MAGIC",
    "HEADER_SIZE",
    "ChunkRecords",
    "EvtxDamage",
    "EvtxRecord",
    "EvtxWriter",
    "Guid",
    "iter_chunks",
]

EVTX_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
HEADER_SIZE = 4096
CHUNK_SIZE = 65536
_CHUNK_HEADER = 512
_RECORD_MAGIC = b"\x2a\x2a\x00\x00"
_MIN_RECORD = 28
_EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"
_FILETIME_EPOCH_DELTA_100NS = 116_444_736_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class EvtxDamage:
    """A damaged chunk (or records in one) that the walk skipped."""

    chunk: int
    offset: int
    message: str
    skipped_records: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkRecords:
    """The records decoded from one chunk: ``(event record id, JSON text)`` in file order."""

    chunk: int
    offset: int
    records: list[tuple[int, str]]


def _file_header(chunks: int, next_record: int) -> bytes:
    head = bytearray(HEADER_SIZE)
    struct.pack_into(
        "<8sQQQIHHHH", head, 0, EVTX_MAGIC, 0, max(chunks - 1, 0), next_record, 128, 1, 3,
        HEADER_SIZE, chunks,
    )  # fmt: skip
    struct.pack_into("<I", head, 124, zlib.crc32(head[:120]))
    return bytes(head)


_SINGLE_CHUNK_HEADER = _file_header(1, 1)


def _count_signatures(chunk: bytes) -> int:
    """Record signatures followed by a plausible size, as a lower bound of records lost."""
    n = 0
    pos = chunk.find(_RECORD_MAGIC, _CHUNK_HEADER)
    while pos != -1 and pos + 8 <= len(chunk):
        (size,) = struct.unpack_from("<I", chunk, pos + 4)
        if _MIN_RECORD <= size <= len(chunk) - pos:
            n += 1
            pos = chunk.find(_RECORD_MAGIC, pos + size)
        else:
            pos = chunk.find(_RECORD_MAGIC, pos + 4)
    return n


def _expected_records(chunk: bytes) -> int | None:
    """Records the chunk header says it holds, or None when the header is implausible."""
    first, last = struct.unpack_from("<QQ", chunk, 8)
    if first == 0 or last < first or last - first >= CHUNK_SIZE // _MIN_RECORD:
        return None
    return int(last - first + 1)


def _decode_chunk(chunk: bytes) -> tuple[list[tuple[int, str]], list[str], str | None]:
    """Records, recoverable-error messages and a fatal error message of one chunk."""
    # Imported here: the Rust extension is needed only when an EVTX file is actually read.
    from evtx import PyEvtxParser

    records: list[tuple[int, str]] = []
    fatal: str | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = PyEvtxParser(
                io.BytesIO(_SINGLE_CHUNK_HEADER + chunk), number_of_threads=1, skip_errors=True
            )
            for rec in parser.records_json():
                if isinstance(rec, dict):
                    records.append((int(rec["event_record_id"]), str(rec["data"])))
        except (RuntimeError, OSError, ValueError) as exc:
            fatal = str(exc)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    return records, messages, fatal


def iter_chunks(stream: BinaryIO, warn: Callable[[EvtxDamage], None]) -> Iterator[ChunkRecords]:
    """Decode the EVTX file open in ``stream`` (positioned at its start) chunk by chunk."""
    head = stream.read(HEADER_SIZE)
    if len(head) < HEADER_SIZE:
        warn(
            EvtxDamage(
                chunk=-1,
                offset=len(head),
                message=f"file header cut short ({len(head)} of {HEADER_SIZE} bytes); no chunks",
                skipped_records=0,
            )
        )
        return
    index = 0
    offset = HEADER_SIZE
    while True:
        chunk = stream.read(CHUNK_SIZE)
        if not chunk:
            return
        truncated = len(chunk) < CHUNK_SIZE
        if chunk[:8] != CHUNK_MAGIC:
            if chunk.count(0) != len(chunk):
                lost = _count_signatures(chunk)
                warn(
                    EvtxDamage(
                        chunk=index,
                        offset=offset,
                        message="no chunk signature "
                        f"'ElfChnk'; chunk skipped ({lost} record signatures in it)",
                        skipped_records=lost,
                    )
                )
        else:
            yield from _one_chunk(chunk, index, offset, truncated, warn)
        if truncated:
            return
        index += 1
        offset += CHUNK_SIZE


def _one_chunk(
    chunk: bytes, index: int, offset: int, truncated: bool, warn: Callable[[EvtxDamage], None]
) -> Iterator[ChunkRecords]:
    expected = _expected_records(chunk) if len(chunk) >= _CHUNK_HEADER else None
    if truncated:
        found = _count_signatures(chunk)
        warn(
            EvtxDamage(
                chunk=index,
                offset=offset,
                message=f"last chunk cut short at "
                f"{len(chunk)} of {CHUNK_SIZE} bytes; decoding what is there",
                skipped_records=0,
            )
        )
        chunk = chunk + bytes(CHUNK_SIZE - len(chunk))
        expected = found if expected is None else min(expected, found)
    records, messages, fatal = _decode_chunk(chunk)
    if expected is None:
        expected = max(_count_signatures(chunk), len(records))
    lost = max(expected - len(records), 0)
    if fatal is not None or messages or lost:
        detail = "; ".join(([fatal] if fatal else []) + messages[:3]) or "records missing"
        warn(
            EvtxDamage(
                chunk=index,
                offset=offset,
                message=f"damaged chunk: {detail}; {len(records)} of {expected} records decoded",
                skipped_records=lost,
            )
        )
    if records:
        yield ChunkRecords(chunk=index, offset=offset, records=records)


# -- writing --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Guid:
    """A value written as a binary GUID (rendered by readers without braces, upper case)."""

    text: str


#: A substitution value: str (UnicodeString), bool (Boolean), int (UInt32, or UInt64 above
#: 2**32), Guid (GUID), or None (an empty value).
Value = str | bool | int | Guid | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EvtxRecord:
    """One event to write: the ``System`` header and the ``EventData`` fields in order."""

    record_id: int
    event_id: int
    provider: str
    channel: str
    computer: str
    time_ns: int
    data: Sequence[tuple[str, Value]]
    provider_guid: str | None = None


def _name(name: str) -> bytes:
    h = 0
    for ch in name:
        h = (h * 65599 + ord(ch)) & 0xFFFFFFFF
    return struct.pack("<IHH", 0, h & 0xFFFF, len(name)) + name.encode("utf-16-le") + b"\0\0"


def _text(text: str) -> bytes:
    return b"\x05\x01" + struct.pack("<H", len(text)) + text.encode("utf-16-le")


def _sub(index: int, vtype: int) -> bytes:
    return b"\x0e" + struct.pack("<HB", index, vtype)


_Node = tuple[str, list[tuple[str, "bytes | str"]], list["_Node | bytes | str"]]


def _element(node: _Node, pos: int) -> bytes:
    """Binary XML for ``node`` (inside a template definition) starting at chunk offset ``pos``."""
    name, attrs, children = node
    out = bytearray(b"\x41" if attrs else b"\x01")
    out += b"\xff\xff"  # dependency identifier: none
    size_at = len(out)
    out += b"\0\0\0\0"
    out += struct.pack("<I", pos + len(out) + 4) + _name(name)
    if attrs:
        list_at = len(out)
        out += b"\0\0\0\0"
        for i, (key, value) in enumerate(attrs):
            out += b"\x46" if i < len(attrs) - 1 else b"\x06"
            out += struct.pack("<I", pos + len(out) + 4) + _name(key)
            out += value if isinstance(value, bytes) else _text(value)
        struct.pack_into("<I", out, list_at, len(out) - list_at - 4)
    if children:
        out += b"\x02"
        for child in children:
            if isinstance(child, bytes):
                out += child
            elif isinstance(child, str):
                out += _text(child)
            else:
                out += _element(child, pos + len(out))
        out += b"\x04"
    else:
        out += b"\x03"
    struct.pack_into("<I", out, size_at, len(out) - size_at - 4)
    return bytes(out)


def _vtype(value: Value) -> int:
    if value is None:
        return 0x00
    if isinstance(value, bool):
        return 0x0D
    if isinstance(value, int):
        return 0x08 if 0 <= value < 1 << 32 else 0x0A
    if isinstance(value, Guid):
        return 0x0F
    return 0x01


def _vbytes(value: Value) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bool):
        return struct.pack("<I", int(value))
    if isinstance(value, int):
        return struct.pack("<I", value) if 0 <= value < 1 << 32 else struct.pack("<Q", value)
    if isinstance(value, Guid):
        return uuid.UUID(value.text.strip("{}")).bytes_le
    return value.encode("utf-16-le")


class EvtxWriter:
    """Write :class:`EvtxRecord` objects to an EVTX file, one 64 KiB chunk at a time."""

    def __init__(self, stream: BinaryIO) -> None:
        self._out = stream
        self._out.write(bytes(HEADER_SIZE))  # rewritten by close()
        self._chunks = 0
        self._next_record = 1
        self._reset_chunk()

    def _reset_chunk(self) -> None:
        self._chunk = bytearray(CHUNK_SIZE)
        self._pos = _CHUNK_HEADER
        self._templates: dict[tuple[object, ...], int] = {}
        self._first: int | None = None
        self._last = 0
        self._last_off = 0

    def __enter__(self) -> EvtxWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, rec: EvtxRecord) -> None:
        data = self._record(rec)
        if self._pos + len(data) > CHUNK_SIZE:
            if self._first is None:
                raise ValueError(f"record {rec.record_id} does not fit in one chunk")
            self._flush_chunk()
            data = self._record(rec)
        self._chunk[self._pos : self._pos + len(data)] = data
        if self._first is None:
            self._first = rec.record_id
        self._last = rec.record_id
        self._last_off = self._pos
        self._pos += len(data)
        self._next_record = max(self._next_record, rec.record_id + 1)

    def _template(self, rec: EvtxRecord) -> _Node:
        provider: list[tuple[str, bytes | str]] = [("Name", rec.provider)]
        if rec.provider_guid:
            provider.append(("Guid", rec.provider_guid))
        data: list[_Node | bytes | str] = [
            ("Data", [("Name", name)], [_sub(5 + i, _vtype(v))]) for i, (name, v) in
            enumerate(rec.data)
        ]  # fmt: skip
        system: list[_Node | bytes | str] = [
            ("Provider", provider, []),
            ("EventID", [], [_sub(0, 0x06)]),
            ("TimeCreated", [("SystemTime", _sub(1, 0x11))], []),
            ("EventRecordID", [], [_sub(2, 0x0A)]),
            ("Channel", [], [_sub(3, 0x01)]),
            ("Computer", [], [_sub(4, 0x01)]),
        ]
        return ("Event", [("xmlns", _EVENT_NS)], [
            ("System", [], system), ("EventData", [], data),
        ])  # fmt: skip

    def _record(self, rec: EvtxRecord) -> bytes:
        filetime = rec.time_ns // 100 + _FILETIME_EPOCH_DELTA_100NS
        key = (rec.provider, rec.provider_guid, tuple((n, _vtype(v)) for n, v in rec.data))
        body = bytearray(b"\x0f\x01\x01\x00\x0c\x01")
        body += struct.pack("<I", len(self._templates) + 1)
        here = self._pos + 24 + len(body) + 4
        known = self._templates.get(key)
        if known is None:
            body += struct.pack("<I", here)
            frag = b"\x0f\x01\x01\x00" + _element(self._template(rec), here + 24 + 4) + b"\x00"
            body += struct.pack("<I", 0) + uuid.UUID(int=len(self._templates) + 1).bytes_le
            body += struct.pack("<I", len(frag)) + frag
            self._templates[key] = here
        else:
            body += struct.pack("<I", known)
        values: list[tuple[int, bytes]] = [
            (0x06, struct.pack("<H", rec.event_id)),
            (0x11, struct.pack("<Q", filetime)),
            (0x0A, struct.pack("<Q", rec.record_id)),
            (0x01, rec.channel.encode("utf-16-le")),
            (0x01, rec.computer.encode("utf-16-le")),
        ]
        values += [(_vtype(v), _vbytes(v)) for _, v in rec.data]
        body += struct.pack("<I", len(values))
        for vtype, raw in values:
            body += struct.pack("<HBB", len(raw), vtype, 0)
        for _, raw in values:
            body += raw
        body += b"\x00"
        size = 24 + len(body) + 4
        head = struct.pack("<4sIQQ", _RECORD_MAGIC, size, rec.record_id, filetime)
        return head + bytes(body) + struct.pack("<I", size)

    def _flush_chunk(self) -> None:
        if self._first is None:
            return
        c = self._chunk
        struct.pack_into(
            "<8sQQQQIIII", c, 0, CHUNK_MAGIC, self._first, self._last, self._first, self._last,
            128, self._last_off, self._pos, zlib.crc32(c[_CHUNK_HEADER : self._pos]),
        )  # fmt: skip
        struct.pack_into("<I", c, 124, zlib.crc32(bytes(c[:120]) + bytes(c[128:_CHUNK_HEADER])))
        self._out.write(bytes(c))
        self._chunks += 1
        self._reset_chunk()

    def close(self) -> None:
        """Write the last chunk and the file header."""
        self._flush_chunk()
        self._out.seek(0)
        self._out.write(_file_header(self._chunks, self._next_record))
        self._out.seek(0, io.SEEK_END)
