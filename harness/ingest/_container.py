"""Capture containers: classic pcap and pcapng records read in large batches, constant memory.

:class:`RecordSource` opens a capture, recognises its format from the magic (classic pcap in
either byte order with microsecond or nanosecond timestamps, or pcapng with any number of
sections and interfaces, each with its own link type and ``if_tsresol``/``if_tsoffset``) and
yields :class:`RecordBatch` objects: the records that lie wholly in a window of the file (a few
MiB, ``chunk_bytes``) and, as NumPy arrays, the offset, captured length, original length,
timestamp and link type of every record.

A regular file is memory-mapped (read-only) and never copied: a batch's ``data`` is the whole
mapping, its offsets are file offsets, and the pages of records already handed out are released
(``MADV_DONTNEED``) as the walk moves on, so the resident size stays about one window whatever
the file's size. The window moves exactly as a chunked read would move its buffer, so batches
are the same either way; anything that cannot be mapped (a pipe, an empty file) is read in
chunks. A file that grows while it is read is mapped again, larger, as a read would go on; one
truncated by another process while it is read ends the process with ``SIGBUS``, as it would any
program that maps files.

The classic-pcap walk is the only per-record Python loop: it reads one 32-bit length per record
and advances; the other header fields, and the checks on all of them, are done for the whole
batch with NumPy. Damage is reported, not raised: a record header that cannot be right (a
captured length beyond any snapshot length, a sub-second field out of range, a pcapng block
whose lengths disagree) becomes an :class:`~harness.errors.InputError` passed to the warning
callback, naming the file and byte offset, and the walk resynchronises on the next plausible
header. A file cut short inside its last record is reported the same way. Only a file that is
not a capture at all, or cannot be opened, raises.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from harness.errors import InputError

__all__ = [
    "PcapInputError",
    "RecordBatch",
    "RecordSource",
    "SourceCounters",
    "take_rows",
]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
#: What a batch's records are read from: a read-only mapping of the file, or a chunk of it.
Buffer = bytes | mmap.mmap

_PCAP_US = 0xA1B2C3D4
_PCAP_NS = 0xA1B23C4D
_NG_SHB = 0x0A0D0D0A
_NG_BOM = 0x1A2B3C4D
_NG_IDB = 1
_NG_OPB = 2
_NG_SPB = 3
_NG_EPB = 6
_NS = 1_000_000_000
#: Largest captured length accepted in a classic record whatever the header's snaplen says
#: (some writers put 0 or 65535 there and still write longer frames after offloading).
_MAX_CAPLEN = 262_144 * 4
#: Largest pcapng block accepted; a longer length field is corruption.
_MAX_BLOCK = 64 << 20
#: A resynchronisation scans at most this far before giving up on the rest of the file.
_RESYNC_LIMIT = 16 << 20
#: Records more than this far from their neighbour in time are implausible when resyncing.
_RESYNC_SKEW_S = 86_400 * 7


class PcapInputError(InputError):
    """A capture file that cannot be read, or a damaged region inside one.

    ``path`` and ``offset`` (byte offset in the file, or ``None`` for the whole file) locate it.
    """

    def __init__(self, path: str, offset: int | None, message: str) -> None:
        self.path = path
        self.offset = offset
        where = f"{path!r}" if offset is None else f"{path!r} at byte offset {offset}"
        super().__init__(f"{where}: {message}")


@dataclass(slots=True)
class SourceCounters:
    """Running container-level counts, read by :class:`harness.ingest.pcap.ReadStats`."""

    records: int = 0
    damaged_regions: int = 0
    skipped_bytes: int = 0
    truncated_tail: bool = False
    fmt: str = ""
    linktypes: set[int] = field(default_factory=set)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordBatch:
    """Records that lie wholly in one buffer, in file order."""

    #: The buffer (slicing it gives ``bytes``); ``arr`` is the same bytes as a NumPy array.
    data: Buffer
    arr: U8
    #: Offset in ``data`` of each record's frame (the link-layer header).
    frame_off: I64
    caplen: I64
    origlen: I64
    ts_ns: I64
    linktype: I64
    #: Global index (0-based, in file order) of the first record of the batch.
    first_index: int
    #: File offset of ``data[0]``.
    base: int

    def __len__(self) -> int:
        return len(self.frame_off)


#: Records as columns: frame offset, captured length, original length, timestamp, link type.
_Columns = tuple[I64, I64, I64, I64, I64]


def _columns(*lists: list[int]) -> _Columns:
    off, cap, orig, ts, lt = (np.asarray(x, dtype=np.int64) for x in lists)
    return off, cap, orig, ts, lt


def take_rows(arr: U8, start: I64, width: int) -> U8:
    """``width`` bytes from each offset in ``start`` as the rows of a new array.

    Every ``start`` must be within ``0 .. len(arr) - width``. Each row is gathered as one
    ``width``-byte item of a strided void view, which is several times faster than fancy
    indexing a ``sliding_window_view``.
    """
    items = np.ndarray(
        shape=(len(arr) - width + 1,),
        dtype=np.dtype((np.void, width)),
        buffer=arr,
        strides=(1,),
    )
    out: U8 = items[start].view(np.uint8).reshape(-1, width)
    return out


class RecordSource:
    """Batches of records from one capture file; iterate once.

    ``warn`` receives every :class:`PcapInputError` about damage inside the file. ``chunk_bytes``
    bounds the buffer (a single record larger than it grows the buffer for that record only).
    A mapped file is read through the same window, moved the same way, so the batches are the
    same whether the file is mapped or read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        warn: Callable[[PcapInputError], None],
        chunk_bytes: int = 4 << 20,
    ) -> None:
        self.path = os.fspath(path)
        self._warn = warn
        self._chunk = max(chunk_bytes, 4096)
        self.counters = SourceCounters()
        try:
            self._file: BinaryIO = open(self.path, "rb", buffering=0)  # noqa: SIM115
        except OSError as exc:
            raise PcapInputError(self.path, None, f"cannot open capture: {exc}") from exc
        self._buf: Buffer = b""
        self._end = 0  # end of the valid bytes of _buf
        self._base = 0  # file offset of _buf[0]
        self._eof = False
        self._index = 0
        self._map: mmap.mmap | None = None
        self._arr: U8 | None = None  # the mapping as an array
        self._released = 0  # pages of the mapping before this offset have been released
        try:
            self._map_file()
            self._detect()
        except BaseException:
            self.close()
            raise

    # -- buffer ---------------------------------------------------------------------------

    def _map_file(self) -> None:
        """Map a regular, non-empty file; otherwise leave it to be read in chunks."""
        try:
            info = os.fstat(self._file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
                return
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return
        self._buf = self._map
        self._arr = np.frombuffer(self._map, dtype=np.uint8)

    def _remap(self) -> None:
        """Map the file again if it has grown since it was mapped."""
        assert self._map is not None
        try:
            if os.fstat(self._file.fileno()).st_size <= len(self._map):
                return
            bigger = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return
        with contextlib.suppress(BufferError):  # batches may still refer to the old one
            self._map.close()
        self._map = self._buf = bigger
        self._arr = np.frombuffer(bigger, dtype=np.uint8)

    def _array(self, data: Buffer) -> U8:
        if self._arr is not None and data is self._map:
            return self._arr
        return np.frombuffer(data, dtype=np.uint8)

    def _release(self, upto: int) -> None:
        """Let the kernel drop mapped pages before buffer offset ``upto`` from this process."""
        if self._map is None:
            return
        end = upto - upto % mmap.PAGESIZE
        if end - self._released < (self._chunk >> 1):
            return
        advice = getattr(mmap, "MADV_DONTNEED", None)
        if advice is not None:
            try:
                self._map.madvise(advice, self._released, end - self._released)
            except OSError:
                return
        self._released = end

    def _read_more(self, pos: int, need: int) -> int:
        """Drop ``_buf[:pos]``, then read until ``need`` bytes from there are buffered (or EOF).

        Returns the new position of the old ``pos``: 0, or ``pos`` itself for a mapped file,
        whose "buffer" is the mapping up to ``_end``, moved on as far as a read would have.
        """
        if self._map is not None:
            have = self._end - pos
            while have < need and not self._eof:
                want = max(self._chunk, need - have)
                if self._end + want > len(self._map):
                    self._remap()  # a read would see what was appended since the mapping
                got = min(want, len(self._map) - self._end)
                if not got:
                    self._eof = True
                    break
                self._end += got
                have += got
            return pos
        buf = self._buf[pos:]
        self._base += pos
        parts = [buf]
        have = len(buf)
        while have < need and not self._eof:
            chunk = self._file.read(max(self._chunk, need - have))
            if not chunk:
                self._eof = True
                break
            parts.append(chunk)
            have += len(chunk)
        self._buf = b"".join(parts) if len(parts) > 1 else buf
        self._end = len(self._buf)
        return 0

    def close(self) -> None:
        self._buf = b""
        self._arr = None
        if self._map is not None:
            # A batch may still refer to it: then it is unmapped when the last reference goes.
            with contextlib.suppress(BufferError):
                self._map.close()
            self._map = None
        self._file.close()

    # -- format detection -------------------------------------------------------------------

    def _detect(self) -> None:
        self._read_more(0, 28)
        raw = self._buf
        if self._end < 4:
            raise PcapInputError(self.path, None, "empty, or shorter than any capture header")
        le = int.from_bytes(raw[:4], "little")
        be = int.from_bytes(raw[:4], "big")
        if le in (_PCAP_US, _PCAP_NS) or be in (_PCAP_US, _PCAP_NS):
            self._little = le in (_PCAP_US, _PCAP_NS)
            magic = le if self._little else be
            if self._end < 24:
                raise PcapInputError(self.path, 0, "truncated inside the pcap global header")
            order = "<" if self._little else ">"
            snaplen, linktype = struct.unpack_from(order + "II", raw, 16)
            self._scale = 1 if magic == _PCAP_NS else 1_000
            self._sub_limit = _NS if magic == _PCAP_NS else 1_000_000
            self._linktype = linktype & 0x0FFFFFFF
            self._max_cap = max(snaplen, _MAX_CAPLEN)
            self._cap_at = struct.Struct(order + "8xI").unpack_from
            self._hdr_at = struct.Struct(order + "IIII").unpack_from
            self.counters.fmt = "pcap-ns" if magic == _PCAP_NS else "pcap"
            self.counters.linktypes.add(self._linktype)
            self._pos = 24
        elif le == _NG_SHB:
            self.counters.fmt = "pcapng"
            self._pos = 0
            self._ng_ifaces: list[tuple[int, int, int, int]] = []  # linktype, num, den, offset
            self._ng_order = "<"
        else:
            raise PcapInputError(
                self.path,
                0,
                f"not a pcap or pcapng file (magic 0x{le:08x} read little-endian); expected "
                "0xa1b2c3d4, 0xa1b23c4d or a pcapng section header 0x0a0d0d0a",
            )

    def __iter__(self) -> Iterator[RecordBatch]:
        if self.counters.fmt == "pcapng":
            return self._iter_ng()
        return self._iter_classic()

    # -- classic pcap -----------------------------------------------------------------------

    def _plausible(self, data: Buffer, pos: int, prev_sec: int | None) -> bool:
        if pos + 16 > self._end:
            return False
        sec, sub, cap, orig = self._hdr_at(data, pos)
        if sub >= self._sub_limit or cap > self._max_cap or orig < cap or orig > (1 << 24):
            return False
        if prev_sec is not None and abs(int(sec) - prev_sec) > _RESYNC_SKEW_S:
            return False
        end: int = pos + 16 + cap
        if end + 16 <= self._end:
            sec2, sub2, cap2, orig2 = self._hdr_at(data, end)
            return bool(
                sub2 < self._sub_limit
                and cap2 <= self._max_cap
                and orig2 >= cap2
                and abs(sec2 - sec) <= _RESYNC_SKEW_S
            )
        return end <= self._end

    def _resync_classic(self, pos: int, prev_sec: int | None, reason: str) -> int | None:
        """Report damage at ``pos`` and return the next plausible record position, or None."""
        start_file = self._base + pos
        self._warn(PcapInputError(self.path, start_file, reason))
        self.counters.damaged_regions += 1
        scanned = 0
        p = pos + 1
        while scanned < _RESYNC_LIMIT:
            if p + 32 > self._end and not self._eof:
                p = self._read_more(p, self._chunk)
            data = self._buf
            limit = self._end - 16
            while p <= limit:
                if self._plausible(data, p, prev_sec):
                    self.counters.skipped_bytes += self._base + p - start_file
                    return p
                p += 1
                scanned += 1
            if self._eof:
                break
        self.counters.skipped_bytes += self._base + self._end - start_file
        self._warn(
            PcapInputError(
                self.path,
                start_file,
                "no plausible record header found after the damaged region; rest of file skipped",
            )
        )
        return None

    def _iter_classic(self) -> Iterator[RecordBatch]:
        pos = self._pos
        cap_at = self._cap_at
        max_cap = self._max_cap
        prev_sec: int | None = None
        while True:
            if self._end - pos < self._chunk // 2 and not self._eof:
                pos = self._read_more(pos, self._chunk)
            self._release(pos)
            data = self._buf
            n = self._end
            # The walk: one length per record, no checks (they are done on the whole batch
            # below, and cut it at the first bad header). It stops past the buffer's end, where
            # only the last record taken can overhang. (A counted loop runs faster than a
            # `while`; ``n`` bounds the count, as every record takes at least 16 bytes.)
            offs: list[int] = []
            append = offs.append
            p = pos
            last = n - 16
            for _ in repeat(None, n):
                if p > last:
                    break
                append(p)
                p += 16 + cap_at(data, p)[0]
            if p > n:
                p = offs.pop()
            batch, cut, bad = self._classic_batch(data, offs)
            if cut is not None:
                p = cut
            elif p + 16 <= n and cap_at(data, p)[0] > max_cap:
                bad = f"record captured length {cap_at(data, p)[0]} exceeds the limit {max_cap}"
            if batch is not None:
                prev_sec = int(batch.ts_ns[-1]) // _NS
                yield batch
            if bad is not None:
                nxt = self._resync_classic(p, prev_sec, bad)
                if nxt is None:
                    return
                pos = nxt
                continue
            pos = p
            if p + 16 > self._end or p + 16 + cap_at(self._buf, p)[0] > self._end:
                if self._eof:
                    if p < self._end:
                        self.counters.truncated_tail = True
                        self.counters.skipped_bytes += self._end - p
                        self._warn(
                            PcapInputError(
                                self.path,
                                self._base + p,
                                f"file ends inside a record ({self._end - p} bytes of a "
                                "record header or frame); the partial record is skipped",
                            )
                        )
                    return
                need = 16 + (cap_at(self._buf, p)[0] if p + 16 <= self._end else 0)
                pos = self._read_more(p, max(need, self._chunk))

    def _classic_batch(
        self, data: Buffer, offs: list[int]
    ) -> tuple[RecordBatch | None, int | None, str | None]:
        """The batch of the records at ``offs``, cut before the first bad header; with the
        offset of that header and what is wrong with it."""
        if not offs:
            return None, None, None
        arr = self._array(data)
        off = np.asarray(offs, dtype=np.int64)
        hdr = take_rows(arr, off, 16)
        fields = hdr.view("<u4" if self._little else ">u4").astype(np.int64)
        sec, sub, cap, orig = fields[:, 0], fields[:, 1], fields[:, 2], fields[:, 3]
        cut: int | None = None
        reason: str | None = None
        cap_bad = cap > self._max_cap
        bad = cap_bad | (sub >= self._sub_limit)
        if bad.any():
            first = int(np.argmax(bad))
            cut = offs[first]
            if cap_bad[first]:
                reason = (
                    f"record captured length {int(cap[first])} exceeds the limit {self._max_cap}"
                )
            else:
                reason = "record sub-second timestamp field out of range"
            off, sec, sub, cap, orig = (x[:first] for x in (off, sec, sub, cap, orig))
            if not len(off):
                return None, cut, reason
        n = len(off)
        batch = RecordBatch(
            data=data,
            arr=arr,
            frame_off=off + 16,
            caplen=cap,
            origlen=np.maximum(orig, cap),
            ts_ns=sec * _NS + sub * self._scale,
            linktype=np.full(n, self._linktype, dtype=np.int64),
            first_index=self._index,
            base=self._base,
        )
        self._index += n
        self.counters.records += n
        return batch, cut, reason

    # -- pcapng -----------------------------------------------------------------------------

    def _ng_block_ok(self, data: Buffer, p: int, order: str) -> int:
        """Length of a valid-looking block at ``p``, 0 if implausible, -1 if not all buffered."""
        if p + 12 > self._end:
            return -1
        btype, blen = struct.unpack_from(order + "II", data, p)
        if blen < 12 or blen & 3 or blen > _MAX_BLOCK:
            return 0
        if p + blen > self._end:
            return -1
        if struct.unpack_from(order + "I", data, p + blen - 4)[0] != blen:
            return 0
        del btype
        return int(blen)

    def _resync_ng(self, pos: int, reason: str) -> int | None:
        start_file = self._base + pos
        self._warn(PcapInputError(self.path, start_file, reason))
        self.counters.damaged_regions += 1
        p = pos + 4
        scanned = 0
        order = self._ng_order
        while scanned < _RESYNC_LIMIT:
            if p + (1 << 16) > self._end and not self._eof:
                p = self._read_more(p, self._chunk)
            data = self._buf
            while p + 12 <= self._end:
                btype = struct.unpack_from(order + "I", data, p)[0]
                if btype in (_NG_EPB, _NG_SPB, _NG_IDB, _NG_SHB, _NG_OPB, 5):
                    blen = self._ng_block_ok(data, p, order)
                    if blen > 0:
                        self.counters.skipped_bytes += self._base + p - start_file
                        return p
                    if blen < 0 and not self._eof:
                        break
                p += 4
                scanned += 4
            else:
                if self._eof:
                    break
                continue
            p = self._read_more(p, self._end - p + self._chunk)
        self.counters.skipped_bytes += self._base + self._end - start_file
        self._warn(
            PcapInputError(
                self.path, start_file, "no valid pcapng block found after the damaged region"
            )
        )
        return None

    def _parse_shb(self, data: Buffer, p: int) -> bool:
        bom = data[p + 8 : p + 12]
        if int.from_bytes(bom, "little") == _NG_BOM:
            self._ng_order = "<"
        elif int.from_bytes(bom, "big") == _NG_BOM:
            self._ng_order = ">"
        else:
            return False
        self._ng_ifaces = []
        return True

    def _parse_idb(self, data: Buffer, p: int, blen: int) -> None:
        order = self._ng_order
        linktype = struct.unpack_from(order + "H", data, p + 8)[0]
        num, den, offset_s = 1_000, 1, 0  # default resolution: microseconds
        q = p + 16
        end = p + blen - 4
        while q + 4 <= end:
            code, olen = struct.unpack_from(order + "HH", data, q)
            if code == 0:
                break
            val = data[q + 4 : q + 4 + olen]
            if code == 9 and olen >= 1:
                v = val[0]
                if v & 0x80:
                    num, den = _NS, 1 << (v & 0x7F)
                else:
                    exp = v & 0x7F
                    num, den = (10 ** (9 - exp), 1) if exp <= 9 else (1, 10 ** (exp - 9))
            elif code == 14 and olen == 8:
                offset_s = struct.unpack(order + "q", val)[0]
            q += 4 + ((olen + 3) & ~3)
        self._ng_ifaces.append((linktype, num, den, offset_s))
        self.counters.linktypes.add(linktype)

    def _epb_run(self, data: Buffer, p: int, n: int) -> tuple[int, _Columns | None]:
        """The enhanced packet blocks from ``p`` on, up to the first other block or the first
        that the general walk would have to judge (a bad length or field, or one overhanging the
        buffer's end ``n``): their columns and the position after them, or None if there is no
        such block at ``p``. The walk reads one type and length per block; the rest is read and
        checked with NumPy."""
        order = self._ng_order
        head = struct.Struct(order + "II").unpack_from
        offs: list[int] = []
        append = offs.append
        last = n - 12
        for _ in repeat(None, n):
            if p > last:
                break
            btype, blen = head(data, p)
            if btype != _NG_EPB or blen < 32:
                break
            append(p)
            p += blen
        if p > n:
            p = offs.pop()
        if not offs:
            return p, None
        arr = self._array(data)
        dt = order + "u4"
        o = np.asarray(offs, dtype=np.int64)
        # type, length, interface, timestamp high and low, captured and original length
        w = take_rows(arr, o, 28).view(dt).astype(np.int64)
        blen = w[:, 1]
        trail = take_rows(arr, o + blen - 4, 4).view(dt).astype(np.int64)[:, 0]
        iface, cap, orig = w[:, 2], w[:, 5], w[:, 6]
        bad = (
            ((blen & 3) != 0)
            | (blen > _MAX_BLOCK)
            | (trail != blen)
            | (cap > blen - 32)
            | (iface >= len(self._ng_ifaces))
        )
        if bad.any():
            first = int(np.argmax(bad))
            p = offs[first]
            if not first:
                return p, None
            o, w, iface, cap, orig = o[:first], w[:first], iface[:first], cap[:first], orig[:first]
        lt, num, den, tsoff = (
            np.asarray(c, dtype=np.int64) for c in zip(*self._ng_ifaces, strict=True)
        )
        raw = (w[:, 3].astype(np.uint64) << np.uint64(32)) | w[:, 4].astype(np.uint64)
        top = int(raw.max())
        used = np.unique(iface).tolist()
        if all(
            den[i] == 1 and abs(int(tsoff[i])) < 1 << 31 and top * int(num[i]) < 1 << 62
            for i in used
        ):
            ts = raw.astype(np.int64) * num[iface] + tsoff[iface] * _NS
        else:  # exact integer arithmetic, as for any single block
            ts = np.asarray(
                [
                    r * int(num[i]) // int(den[i]) + int(tsoff[i]) * _NS
                    for r, i in zip(raw.tolist(), iface.tolist(), strict=True)
                ],
                dtype=np.int64,
            )
        return p, (o + 28, cap, np.maximum(orig, cap), ts, lt[iface])

    def _iter_ng(self) -> Iterator[RecordBatch]:
        pos = 0
        while True:
            if self._end - pos < self._chunk // 2 and not self._eof:
                pos = self._read_more(pos, self._chunk)
            self._release(pos)
            data = self._buf
            n = self._end
            # Runs of enhanced packet blocks come in columns from _epb_run; other records are
            # gathered one by one here, and flushed to ``parts`` before each run to keep order.
            parts: list[_Columns] = []
            last_ts = 0
            offs: list[int] = []
            caps: list[int] = []
            origs: list[int] = []
            tss: list[int] = []
            lts: list[int] = []
            p = pos
            bad: str | None = None
            unpack = struct.unpack_from
            while p + 12 <= n:
                order = self._ng_order
                btype, blen = unpack(order + "II", data, p)
                if btype == _NG_EPB and blen >= 32:
                    q, run = self._epb_run(data, p, n)
                    if run is not None:
                        if offs:
                            parts.append(_columns(offs, caps, origs, tss, lts))
                            offs, caps, origs, tss, lts = [], [], [], [], []
                        parts.append(run)
                        last_ts = int(run[3][-1])
                        p = q
                        continue
                if btype == _NG_SHB:
                    if p + 12 > n:
                        break
                    if not self._parse_shb(data, p):
                        bad = "section header block with an unknown byte-order magic"
                        break
                    order = self._ng_order
                    blen = unpack(order + "I", data, p + 4)[0]
                if blen < 12 or blen & 3 or blen > _MAX_BLOCK:
                    bad = f"pcapng block length {blen} is invalid"
                    break
                if p + blen > n:
                    break
                if unpack(order + "I", data, p + blen - 4)[0] != blen:
                    bad = f"pcapng block of type {btype} has mismatched length fields"
                    break
                if btype in (_NG_EPB, _NG_OPB):
                    if blen < 32:
                        bad = "enhanced packet block too short"
                        break
                    if btype == _NG_EPB:
                        iface, hi, lo, cap, orig = unpack(order + "IIIII", data, p + 8)
                    else:
                        iface, _drops, hi, lo, cap, orig = unpack(order + "HHIIII", data, p + 8)
                    if cap > blen - 32:
                        bad = f"packet block captured length {cap} exceeds its block"
                        break
                    if iface >= len(self._ng_ifaces):
                        bad = f"packet block names interface {iface}, which is not described"
                        break
                    lt, num, den, tsoff = self._ng_ifaces[iface]
                    offs.append(p + 28)
                    caps.append(cap)
                    origs.append(max(orig, cap))
                    tss.append(((hi << 32) | lo) * num // den + tsoff * _NS)
                    lts.append(lt)
                elif btype == _NG_SPB:
                    if not self._ng_ifaces:
                        bad = "simple packet block before any interface description"
                        break
                    orig = unpack(order + "I", data, p + 8)[0]
                    cap = min(orig, blen - 16)
                    offs.append(p + 12)
                    caps.append(cap)
                    origs.append(orig)
                    tss.append(tss[-1] if tss else last_ts)
                    lts.append(self._ng_ifaces[0][0])
                elif btype == _NG_IDB:
                    if blen < 20:
                        bad = "interface description block too short"
                        break
                    self._parse_idb(data, p, blen)
                p += blen
            if offs:
                parts.append(_columns(offs, caps, origs, tss, lts))
            if parts:
                cols = [
                    np.concatenate(c) if len(parts) > 1 else c[0] for c in zip(*parts, strict=True)
                ]
                k = len(cols[0])
                yield RecordBatch(
                    data=data,
                    arr=self._array(data),
                    frame_off=cols[0],
                    caplen=cols[1],
                    origlen=cols[2],
                    ts_ns=cols[3],
                    linktype=cols[4],
                    first_index=self._index,
                    base=self._base,
                )
                self._index += k
                self.counters.records += k
            if bad is not None:
                nxt = self._resync_ng(p, bad)
                if nxt is None:
                    return
                pos = nxt
                continue
            pos = p
            if p + 12 > self._end or p + self._ng_len(p) > self._end:
                if self._eof:
                    if p < self._end:
                        self.counters.truncated_tail = True
                        self.counters.skipped_bytes += self._end - p
                        self._warn(
                            PcapInputError(
                                self.path,
                                self._base + p,
                                f"file ends inside a pcapng block ({self._end - p} bytes); "
                                "the partial block is skipped",
                            )
                        )
                    return
                need = self._ng_len(p) if p + 12 <= self._end else 12
                pos = self._read_more(p, max(need, self._chunk))

    def _ng_len(self, p: int) -> int:
        blen: int = struct.unpack_from(self._ng_order + "I", self._buf, p + 4)[0]
        return min(max(blen, 12), _MAX_BLOCK)
