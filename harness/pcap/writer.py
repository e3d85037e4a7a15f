"""Write and read classic libpcap files, fast and byte-for-byte deterministic.

:class:`PcapWriter` writes the classic (not pcapng) format with the nanosecond-resolution magic
``0xa1b23c4d``, little-endian, link type Ethernet. A frame longer than the snapshot length is
stored cut to it with its real length in the record's ``orig_len``, as ``tcpdump -s`` does;
:meth:`PcapWriter.write_records` takes frames already cut by their builder, with their real
lengths, so a 64 KiB segment never has to exist in memory to be recorded. Records are appended
to an in-memory ``bytearray`` and handed to the file in large chunks, because one ``write``
system call per packet would cost more than building the packet. Nothing in the output depends
on the wall clock, the host or the Python version: the same records always give the same file.

:func:`iter_pcap` (and :class:`PcapReader`, which also exposes the global header) reads classic
pcap files in either byte order with microsecond or nanosecond timestamps and yields
``(ts_ns, frame)`` pairs. A file that is not classic pcap, or is cut short, raises
:class:`PcapFormatError`, an :class:`~harness.errors.InputError`.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Self

from harness.errors import InputError

__all__ = [
    "DEFAULT_SNAPLEN",
    "LINKTYPE_ETHERNET",
    "PCAP_MAGIC_NS",
    "PCAP_MAGIC_US",
    "PcapFormatError",
    "PcapHeader",
    "PcapReader",
    "PcapWriter",
    "iter_pcap",
    "pcap_bytes",
]

#: Magic of classic pcap with microsecond timestamps (as read in the file's own byte order).
PCAP_MAGIC_US = 0xA1B2C3D4
#: Magic of classic pcap with nanosecond timestamps.
PCAP_MAGIC_NS = 0xA1B23C4D
#: The pcapng Section Header Block type; recognised only to give a helpful error.
_PCAPNG_MAGIC = 0x0A0D0D0A
LINKTYPE_ETHERNET = 1
#: Default snapshot length: the value tcpdump and Wireshark use since 2016.
DEFAULT_SNAPLEN = 262_144
#: Flush threshold of the write buffer. 1 MiB keeps system calls rare without holding much.
DEFAULT_BUFFER_SIZE = 1 << 20

_NS_PER_S = 1_000_000_000

_GLOBAL_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER_LE = struct.Struct("<IIII")
_RECORD_HEADER_BE = struct.Struct(">IIII")

PathOrFile = str | os.PathLike[str] | BinaryIO


class PcapFormatError(InputError):
    """A file is not a classic pcap file, or is truncated or corrupt."""


def _bad_timestamp(ts_ns: int) -> ValueError:
    # The record's seconds field is an unsigned 32-bit integer.
    return ValueError(f"timestamp {ts_ns} ns does not fit a pcap record (0 to 2**32 s)")


class PcapWriter:
    """Append Ethernet frames to a classic nanosecond pcap file.

    ``target`` is a path (the writer opens and closes it) or a binary file object (the writer
    writes to it and flushes, but leaves closing to the caller). Use it as a context manager so
    the last chunk is flushed even when an exception escapes.
    """

    __slots__ = (
        "_buf",
        "_buffer_size",
        "_closed",
        "_file",
        "_owns_file",
        "_pack",
        "_packets",
        "_snaplen",
        "_written",
    )

    def __init__(
        self,
        target: PathOrFile,
        *,
        snaplen: int = DEFAULT_SNAPLEN,
        linktype: int = LINKTYPE_ETHERNET,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
    ) -> None:
        if not 0 < snaplen <= 0x7FFFFFFF:
            raise ValueError(f"snaplen must be in 1..2**31-1, got {snaplen}")
        if not 0 <= linktype <= 0xFFFF:
            raise ValueError(f"linktype must fit 16 bits, got {linktype}")
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be positive, got {buffer_size}")
        self._file: BinaryIO
        if isinstance(target, str | os.PathLike):
            # The file's own buffer stays small: this class collects chunks of buffer_size and a
            # BufferedWriter passes writes larger than its buffer straight through.
            self._file = open(target, "wb")  # noqa: SIM115 - closed in close()
            self._owns_file = True
        else:
            self._file = target
            self._owns_file = False
        self._snaplen = snaplen
        self._buffer_size = buffer_size
        self._pack = _RECORD_HEADER_LE.pack
        self._packets = 0
        self._written = 0
        self._closed = False
        self._buf = bytearray(_GLOBAL_HEADER.pack(PCAP_MAGIC_NS, 2, 4, 0, 0, snaplen, linktype))

    # -- counters ---------------------------------------------------------------------------

    @property
    def packets_written(self) -> int:
        """Records written so far (buffered ones included)."""
        return self._packets

    @property
    def snaplen(self) -> int:
        """The snapshot length in the file header: no record stores more bytes than this."""
        return self._snaplen

    @property
    def frame_bytes_written(self) -> int:
        """Sum of the captured frame lengths written so far."""
        return self.bytes_written - _GLOBAL_HEADER.size - _RECORD_HEADER_LE.size * self._packets

    @property
    def bytes_written(self) -> int:
        """Size of the file so far, headers included (buffered bytes included)."""
        return self._written + len(self._buf)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- writing ----------------------------------------------------------------------------

    def write(self, ts_ns: int, frame: bytes | bytearray | memoryview) -> None:
        """Append one frame captured at ``ts_ns`` (integer nanoseconds since the epoch, UTC).

        A frame longer than the snapshot length is cut to it, and the record keeps the original
        length, as a capture tool would.
        """
        if self._closed:
            raise ValueError("write to a closed PcapWriter")
        orig_len = len(frame)
        if orig_len > self._snaplen:
            frame = frame[: self._snaplen]
        sec, nsec = divmod(ts_ns, _NS_PER_S)
        try:
            header = self._pack(sec, nsec, len(frame), orig_len)
        except struct.error:
            raise _bad_timestamp(ts_ns) from None
        buf = self._buf
        buf += header
        buf += frame
        self._packets += 1
        if len(buf) >= self._buffer_size:
            self._drain()

    def write_many(self, packets: Iterable[tuple[int, bytes | bytearray | memoryview]]) -> None:
        """Append ``(ts_ns, frame)`` pairs: :meth:`write` in a loop, with its overhead hoisted."""
        if self._closed:
            raise ValueError("write to a closed PcapWriter")
        pack = self._pack
        snaplen = self._snaplen
        limit = self._buffer_size
        buf = self._buf
        count = 0
        try:
            for ts_ns, frame in packets:
                orig_len = len(frame)
                if orig_len > snaplen:
                    frame = frame[:snaplen]  # cut to snaplen, as a capture tool would
                sec, nsec = divmod(ts_ns, _NS_PER_S)
                # struct rejects a negative or post-2106 seconds field; no separate check needed.
                try:
                    buf += pack(sec, nsec, len(frame), orig_len)
                except struct.error:
                    raise _bad_timestamp(ts_ns) from None
                buf += frame
                count += 1
                if len(buf) >= limit:
                    self._drain()
        finally:
            self._packets += count

    def write_records(self, records: Iterable[tuple[int, bytes | bytearray, int]]) -> None:
        """Append ``(ts_ns, captured, orig_len)`` records: ``captured`` is the start of a frame
        whose real length is ``orig_len`` (cut further to the snapshot length if longer).

        This is how a builder that never materialises a large payload hands over its frames.
        """
        if self._closed:
            raise ValueError("write to a closed PcapWriter")
        pack = self._pack
        snaplen = self._snaplen
        limit = self._buffer_size
        buf = self._buf
        count = 0
        try:
            for ts_ns, frame, orig_len in records:
                if len(frame) > snaplen:
                    frame = frame[:snaplen]
                if orig_len < len(frame):
                    raise ValueError(
                        f"record at {ts_ns} ns: orig_len {orig_len} is shorter than the "
                        f"{len(frame)} captured bytes"
                    )
                sec, nsec = divmod(ts_ns, _NS_PER_S)
                try:
                    buf += pack(sec, nsec, len(frame), orig_len)
                except struct.error:
                    raise _bad_timestamp(ts_ns) from None
                buf += frame
                count += 1
                if len(buf) >= limit:
                    self._drain()
        finally:
            self._packets += count

    def _drain(self) -> None:
        if self._buf:
            self._file.write(self._buf)
            self._written += len(self._buf)
            # Reuse the same bytearray: its allocation stays warm for the next chunk.
            self._buf.clear()

    def flush(self) -> None:
        """Hand everything buffered to the file and flush the file object."""
        if self._closed:
            return
        self._drain()
        self._file.flush()

    def close(self) -> None:
        """Flush, and close the file if this writer opened it. Calling it twice is harmless."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            if self._owns_file:
                self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- reading --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PcapHeader:
    """The global header of a classic pcap file."""

    byte_order: str  # "<" or ">", as struct spells it
    nanosecond: bool
    version_major: int
    version_minor: int
    snaplen: int
    linktype: int


class PcapReader:
    """Iterate over the records of a classic pcap file as ``(ts_ns, frame)`` pairs.

    The global header is read on construction, so ``header`` is available before iterating and
    a file that is not pcap fails at once. Use as a context manager, or call :meth:`close`.
    """

    __slots__ = ("_file", "_name", "_owns_file", "header")

    def __init__(self, source: PathOrFile) -> None:
        self._file: BinaryIO
        if isinstance(source, str | os.PathLike):
            self._name = os.fspath(source)
            try:
                self._file = open(source, "rb", buffering=DEFAULT_BUFFER_SIZE)  # noqa: SIM115
            except OSError as exc:
                raise PcapFormatError(f"cannot open pcap file {self._name!r}: {exc}") from exc
            self._owns_file = True
        else:
            self._name = str(getattr(source, "name", "<stream>"))
            self._file = source
            self._owns_file = False
        try:
            self.header = self._read_header()
        except BaseException:
            self.close()
            raise

    def _read_header(self) -> PcapHeader:
        raw = self._file.read(_GLOBAL_HEADER.size)
        if len(raw) < 4:
            raise PcapFormatError(f"{self._name!r} is empty or shorter than a pcap header")
        magic_le = int.from_bytes(raw[:4], "little")
        magic_be = int.from_bytes(raw[:4], "big")
        if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            order, magic = "<", magic_le
        elif magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            order, magic = ">", magic_be
        elif magic_le == _PCAPNG_MAGIC:
            raise PcapFormatError(
                f"{self._name!r} is pcapng, not classic pcap; convert it with "
                "'editcap -F pcap IN OUT'"
            )
        else:
            raise PcapFormatError(
                f"{self._name!r} is not a pcap file (magic 0x{magic_le:08x} read little-endian)"
            )
        if len(raw) < _GLOBAL_HEADER.size:
            raise PcapFormatError(f"{self._name!r} is truncated inside the pcap global header")
        _, major, minor, _, _, snaplen, linktype = struct.unpack(
            order + _GLOBAL_HEADER.format[1:], raw
        )
        return PcapHeader(
            byte_order=order,
            nanosecond=magic == PCAP_MAGIC_NS,
            version_major=major,
            version_minor=minor,
            snaplen=snaplen,
            # The upper bits carry FCS length and flags (pcap-linktype(7)); keep the type only.
            linktype=linktype & 0x0FFFFFFF,
        )

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        for ts_ns, frame, _orig_len in self.records():
            yield ts_ns, frame

    def records(self) -> Iterator[tuple[int, bytes, int]]:
        """``(ts_ns, captured bytes, original frame length)`` for every record, in file order."""
        read = self._file.read
        unpack = (_RECORD_HEADER_LE if self.header.byte_order == "<" else _RECORD_HEADER_BE).unpack
        scale = 1 if self.header.nanosecond else 1_000
        sub_limit = _NS_PER_S if self.header.nanosecond else 1_000_000
        index = 0
        while True:
            rec = read(16)
            if not rec:
                return
            if len(rec) < 16:
                raise PcapFormatError(
                    f"{self._name!r}: record {index} is truncated inside its header"
                )
            sec, sub, cap_len, orig_len = unpack(rec)
            if sub >= sub_limit:
                raise PcapFormatError(
                    f"{self._name!r}: record {index} has a sub-second field of {sub}, "
                    f"expected < {sub_limit}"
                )
            frame = read(cap_len)
            if len(frame) < cap_len:
                raise PcapFormatError(
                    f"{self._name!r}: record {index} is truncated "
                    f"({len(frame)} of {cap_len} captured bytes present)"
                )
            yield sec * _NS_PER_S + sub * scale, frame, orig_len
            index += 1

    def close(self) -> None:
        if self._owns_file:
            self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def iter_pcap(source: PathOrFile) -> Iterator[tuple[int, bytes]]:
    """Yield ``(ts_ns, frame)`` for every record of a classic pcap file, in file order.

    Reads microsecond and nanosecond files in either byte order. Raises
    :class:`PcapFormatError` for anything else or for a truncated file.
    """
    with PcapReader(source) as reader:
        yield from reader


def pcap_bytes(packets: Iterable[tuple[int, bytes]], **kwargs: int) -> bytes:
    """The pcap file for ``packets``, in memory (handy for tests and small captures)."""
    out = io.BytesIO()
    with PcapWriter(out, **kwargs) as writer:
        writer.write_many(packets)
    return out.getvalue()
