"""Capture containers: classic pcap and pcapng records read in large batches, constant memory.

:class:`RecordSource` opens a capture, recognises its format from the magic (classic pcap in
either byte order with microsecond or nanosecond timestamps, or pcapng with any number of
sections and interfaces, each with its own link type and ``if_tsresol``/``if_tsoffset``) and
yields :class:`RecordBatch` objects: one buffer of up to a few MiB and, as NumPy arrays, the
offset, captured length, original length, timestamp and link type of every record in it.

The classic-pcap walk is the only per-record Python loop: it reads one 32-bit length per record
and advances; the other header fields are gathered for the whole batch with NumPy and checked
there. Damage is reported, not raised: a record header that cannot be right (a captured length
beyond any snapshot length, a sub-second field out of range, a pcapng block whose lengths
disagree) becomes an :class:`~harness.errors.InputError` passed to the warning callback, naming
the file and byte offset, and the walk resynchronises on the next plausible header. A file cut
short inside its last record is reported the same way. Only a file that is not a capture at all,
or cannot be opened, raises.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from harness.errors import InputError

__all__ = ["PcapInputError", "RecordBatch", "RecordSource", "SourceCounters"]

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]

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

    data: bytes
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


def _empty() -> I64:
    return np.zeros(0, dtype=np.int64)


class RecordSource:
    """Batches of records from one capture file; iterate once.

    ``warn`` receives every :class:`PcapInputError` about damage inside the file. ``chunk_bytes``
    bounds the buffer (a single record larger than it grows the buffer for that record only).
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
        self._buf = b""
        self._base = 0  # file offset of _buf[0]
        self._eof = False
        self._index = 0
        try:
            self._detect()
        except BaseException:
            self.close()
            raise

    # -- buffer ---------------------------------------------------------------------------

    def _read_more(self, pos: int, need: int) -> int:
        """Drop ``_buf[:pos]``, then read until ``need`` bytes from there are buffered (or EOF).

        Returns the new position of the old ``pos`` (always 0).
        """
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
        return 0

    def close(self) -> None:
        self._file.close()

    # -- format detection -------------------------------------------------------------------

    def _detect(self) -> None:
        self._read_more(0, 28)
        raw = self._buf
        if len(raw) < 4:
            raise PcapInputError(self.path, None, "empty, or shorter than any capture header")
        le = int.from_bytes(raw[:4], "little")
        be = int.from_bytes(raw[:4], "big")
        if le in (_PCAP_US, _PCAP_NS) or be in (_PCAP_US, _PCAP_NS):
            self._little = le in (_PCAP_US, _PCAP_NS)
            magic = le if self._little else be
            if len(raw) < 24:
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

    def _plausible(self, data: bytes, pos: int, prev_sec: int | None) -> bool:
        if pos + 16 > len(data):
            return False
        sec, sub, cap, orig = self._hdr_at(data, pos)
        if sub >= self._sub_limit or cap > self._max_cap or orig < cap or orig > (1 << 24):
            return False
        if prev_sec is not None and abs(int(sec) - prev_sec) > _RESYNC_SKEW_S:
            return False
        end: int = pos + 16 + cap
        if end + 16 <= len(data):
            sec2, sub2, cap2, orig2 = self._hdr_at(data, end)
            return bool(
                sub2 < self._sub_limit
                and cap2 <= self._max_cap
                and orig2 >= cap2
                and abs(sec2 - sec) <= _RESYNC_SKEW_S
            )
        return end <= len(data)

    def _resync_classic(self, pos: int, prev_sec: int | None, reason: str) -> int | None:
        """Report damage at ``pos`` and return the next plausible record position, or None."""
        start_file = self._base + pos
        self._warn(PcapInputError(self.path, start_file, reason))
        self.counters.damaged_regions += 1
        scanned = 0
        p = pos + 1
        while scanned < _RESYNC_LIMIT:
            if p + 32 > len(self._buf) and not self._eof:
                p = self._read_more(p, self._chunk)
            data = self._buf
            limit = len(data) - 16
            while p <= limit:
                if self._plausible(data, p, prev_sec):
                    self.counters.skipped_bytes += self._base + p - start_file
                    return p
                p += 1
                scanned += 1
            if self._eof:
                break
        self.counters.skipped_bytes += self._base + len(self._buf) - start_file
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
            if len(self._buf) - pos < self._chunk // 2 and not self._eof:
                pos = self._read_more(pos, self._chunk)
            data = self._buf
            n = len(data)
            offs: list[int] = []
            append = offs.append
            p = pos
            bad: str | None = None
            while p + 16 <= n:
                cap = cap_at(data, p)[0]
                if cap > max_cap:
                    bad = f"record captured length {cap} exceeds the limit {max_cap}"
                    break
                end = p + 16 + cap
                if end > n:
                    break
                append(p)
                p = end
            batch, cut = self._classic_batch(data, offs)
            if cut is not None:
                p, bad = cut, "record sub-second timestamp field out of range"
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
            if p + 16 > len(self._buf) or p + 16 + cap_at(self._buf, p)[0] > len(self._buf):
                if self._eof:
                    if p < len(self._buf):
                        self.counters.truncated_tail = True
                        self.counters.skipped_bytes += len(self._buf) - p
                        self._warn(
                            PcapInputError(
                                self.path,
                                self._base + p,
                                f"file ends inside a record ({len(self._buf) - p} bytes of a "
                                "record header or frame); the partial record is skipped",
                            )
                        )
                    return
                need = 16 + (cap_at(self._buf, p)[0] if p + 16 <= len(self._buf) else 0)
                pos = self._read_more(p, max(need, self._chunk))

    def _classic_batch(self, data: bytes, offs: list[int]) -> tuple[RecordBatch | None, int | None]:
        if not offs:
            return None, None
        arr = np.frombuffer(data, dtype=np.uint8)
        off = np.asarray(offs, dtype=np.int64)
        hdr = np.lib.stride_tricks.sliding_window_view(arr, 16)[off]
        fields = hdr.view("<u4" if self._little else ">u4").astype(np.int64)
        sec, sub, cap, orig = fields[:, 0], fields[:, 1], fields[:, 2], fields[:, 3]
        cut: int | None = None
        bad = sub >= self._sub_limit
        if bad.any():
            first = int(np.argmax(bad))
            cut = offs[first]
            off, sec, sub, cap, orig = (x[:first] for x in (off, sec, sub, cap, orig))
            if not len(off):
                return None, cut
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
        return batch, cut

    # -- pcapng -----------------------------------------------------------------------------

    def _ng_block_ok(self, data: bytes, p: int, order: str) -> int:
        """Length of a valid-looking block at ``p``, 0 if implausible, -1 if not all buffered."""
        if p + 12 > len(data):
            return -1
        btype, blen = struct.unpack_from(order + "II", data, p)
        if blen < 12 or blen & 3 or blen > _MAX_BLOCK:
            return 0
        if p + blen > len(data):
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
            if p + (1 << 16) > len(self._buf) and not self._eof:
                p = self._read_more(p, self._chunk)
            data = self._buf
            while p + 12 <= len(data):
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
            p = self._read_more(p, len(self._buf) - p + self._chunk)
        self.counters.skipped_bytes += self._base + len(self._buf) - start_file
        self._warn(
            PcapInputError(
                self.path, start_file, "no valid pcapng block found after the damaged region"
            )
        )
        return None

    def _parse_shb(self, data: bytes, p: int) -> bool:
        bom = data[p + 8 : p + 12]
        if int.from_bytes(bom, "little") == _NG_BOM:
            self._ng_order = "<"
        elif int.from_bytes(bom, "big") == _NG_BOM:
            self._ng_order = ">"
        else:
            return False
        self._ng_ifaces = []
        return True

    def _parse_idb(self, data: bytes, p: int, blen: int) -> None:
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

    def _iter_ng(self) -> Iterator[RecordBatch]:
        pos = 0
        while True:
            if len(self._buf) - pos < self._chunk // 2 and not self._eof:
                pos = self._read_more(pos, self._chunk)
            data = self._buf
            n = len(data)
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
                    tss.append(tss[-1] if tss else 0)
                    lts.append(self._ng_ifaces[0][0])
                elif btype == _NG_IDB:
                    if blen < 20:
                        bad = "interface description block too short"
                        break
                    self._parse_idb(data, p, blen)
                p += blen
            if offs:
                arr = np.frombuffer(data, dtype=np.uint8)
                k = len(offs)
                yield RecordBatch(
                    data=data,
                    arr=arr,
                    frame_off=np.asarray(offs, dtype=np.int64),
                    caplen=np.asarray(caps, dtype=np.int64),
                    origlen=np.asarray(origs, dtype=np.int64),
                    ts_ns=np.asarray(tss, dtype=np.int64),
                    linktype=np.asarray(lts, dtype=np.int64),
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
            if p + 12 > len(self._buf) or p + self._ng_len(p) > len(self._buf):
                if self._eof:
                    if p < len(self._buf):
                        self.counters.truncated_tail = True
                        self.counters.skipped_bytes += len(self._buf) - p
                        self._warn(
                            PcapInputError(
                                self.path,
                                self._base + p,
                                f"file ends inside a pcapng block ({len(self._buf) - p} bytes); "
                                "the partial block is skipped",
                            )
                        )
                    return
                need = self._ng_len(p) if p + 12 <= len(self._buf) else 12
                pos = self._read_more(p, max(need, self._chunk))

    def _ng_len(self, p: int) -> int:
        blen: int = struct.unpack_from(self._ng_order + "I", self._buf, p + 4)[0]
        return min(max(blen, 12), _MAX_BLOCK)
