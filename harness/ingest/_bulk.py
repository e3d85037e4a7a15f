"""The fast path's grouping: which packets of a batch can be accounted for in bulk.

Packets decoded by :func:`~harness.ingest._decode.decode_batch` are grouped by bidirectional
5-tuple with one sort of a 64-bit key (then checked field by field against each group's first
packet, so a hash collision only costs speed). Flows are independent in the engine, so a batch is
processed flow by flow:

1. *Whole-slow groups* go through the per-packet engine first, all together in file order: DNS
   (port 53, or a flow already identified as DNS), new UDP flows (their first datagram may turn
   out to be DNS), closed flows, flows awaiting a no-handshake verdict, flows that also have
   packets only the slow decoder reads (fragments, extension headers), hash collisions. DNS
   answers thus reach the resolved-name cache before any other flow of the batch is recorded.
2. Every other group is walked in packet order as *breakers* and *runs*. Breakers, one packet
   at a time through the engine: the group's first packet, SYN/FIN/RST and segments without ACK,
   the first payload of each side, and a packet after a silence as long as the shortest idle
   timeout. Runs (the plain packets between breakers) are added to the flow from their
   aggregates when that provably equals per-packet processing: the flow is open and identified
   on the sides with payload, the run crosses no interval boundary or timeout, and every segment
   is inside the window however the run's own segments move the high-water mark. Otherwise the
   run's packets go through the engine too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from harness.ingest._container import RecordBatch
from harness.ingest._decode import Packet, VecDecoded
from harness.ingest._flows import ACK, FIN, M32, RST, SYN, Flow, FlowEngine, _signed

__all__ = ["bulk_batch", "flow_key"]

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
FlowKey = tuple[int, bytes, int, bytes, int]
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)
_S29 = np.uint64(29)
_S16 = np.uint64(16)
_BIG = np.int64(1 << 40)


def flow_key(proto: int, src: bytes, sport: int, dst: bytes, dport: int) -> FlowKey:
    """The engine's canonical bidirectional key."""
    if (src, sport) <= (dst, dport):
        return (proto, src, sport, dst, dport)
    return (proto, dst, dport, src, sport)


def _rows(arr: npt.NDArray[np.uint8], start: I64, width: int) -> npt.NDArray[np.uint8]:
    """``width`` bytes from each offset in ``start`` (clamped to the buffer), as rows."""
    if len(arr) < width:
        arr = np.concatenate([arr, np.zeros(width - len(arr), dtype=np.uint8)])
    view = np.lib.stride_tricks.sliding_window_view(arr, width)
    out: npt.NDArray[np.uint8] = view[np.clip(start, 0, len(arr) - width)]
    return out


def _mix(h: U64, lo: U64, port: U64) -> U64:
    x = (h * _C1) ^ lo
    x ^= x >> _S29
    x = (x * _C2) ^ port
    x ^= x >> _S16
    out: U64 = x * _C3
    return out


def packets_of(b: RecordBatch, v: VecDecoded, indices: npt.NDArray[np.intp]) -> list[Packet]:
    """Engine tuples for FAST records ``indices`` of ``b``, built from the decoded arrays."""
    if not len(indices):
        return []
    data = b.data
    cols = [
        x[indices].tolist()
        for x in (
            v.proto, v.l3, v.sport, v.dport, v.flags, v.seq, v.ack, v.win, v.ttl, v.paylen,
            v.pay_off, v.paycap, v.l4, v.cap_end, b.ts_ns, v.v6,
        )
    ]  # fmt: skip
    first = b.first_index
    out: list[Packet] = []
    append = out.append
    for i, proto, l3, sport, dport, flags, seq, ack, win, ttl, paylen, pay_off, paycap, l4, \
            cap_end, ts, v6 in zip(indices.tolist(), *cols, strict=True):  # fmt: skip
        if v6:
            src, dst = data[l3 + 8 : l3 + 24], data[l3 + 24 : l3 + 40]
        else:
            src, dst = data[l3 + 12 : l3 + 16], data[l3 + 16 : l3 + 20]
        opts = data[l4 + 20 : min(pay_off, cap_end)] if proto == 6 else b""
        append((first + i, ts, proto, src, sport, dst, dport, flags, seq, ack, win, ttl, paylen,
                data[pay_off : pay_off + paycap], opts))  # fmt: skip
    return out


def bulk_batch(
    b: RecordBatch,
    v: VecDecoded,
    fidx: npt.NDArray[np.intp],
    slow_packets: list[Packet],
    engine: FlowEngine,
    feed: Callable[[list[Packet]], None],
) -> int:
    """Process FAST records ``fidx`` of ``b`` together with the already decoded
    ``slow_packets``; returns how many packets were accounted for in bulk."""
    n = len(fidx)
    sh, sl, dh, dl = v.src_hi[fidx], v.src_lo[fidx], v.dst_hi[fidx], v.dst_lo[fidx]
    sp = v.sport[fidx].astype(np.uint64)
    dp = v.dport[fidx].astype(np.uint64)
    proto = v.proto[fidx].astype(np.uint64)
    es = _mix(sh, sl, sp)
    ed = _mix(dh, dl, dp)
    lo_src = es < ed
    key = (np.minimum(es, ed) * _C1) ^ np.maximum(es, ed) ^ (proto * _C3)
    o = np.argsort(key, kind="stable")
    ks = key[o]
    gstart = np.ones(n, dtype=bool)
    gstart[1:] = ks[1:] != ks[:-1]
    starts = np.flatnonzero(gstart)
    ngroups = len(starts)
    gid = np.cumsum(gstart) - 1
    rep = o[starts]
    r_of = rep[gid]
    same = lo_src[o] == lo_src[r_of]
    bad = (
        (np.where(same, sh[o], dh[o]) != sh[r_of])
        | (np.where(same, sl[o], dl[o]) != sl[r_of])
        | (np.where(same, sp[o], dp[o]) != sp[r_of])
        | (np.where(same, dh[o], sh[o]) != dh[r_of])
        | (np.where(same, dl[o], sl[o]) != dl[r_of])
        | (np.where(same, dp[o], sp[o]) != dp[r_of])
        | (proto[o] != proto[r_of])
        | (es[o] == ed[o])
    )
    g_bad = np.maximum.reduceat(bad.astype(np.int8), starts).tolist()

    # -- 1. whole-slow groups -------------------------------------------------------------
    rep_b = fidx[rep]
    R_l3 = v.l3[rep_b].tolist()
    R_v6 = v.v6[rep_b].tolist()
    R_sp = v.sport[rep_b].tolist()
    R_dp = v.dport[rep_b].tolist()
    R_pr = v.proto[rep_b].tolist()
    data = b.data
    flows = engine.flows
    slow_keys = {flow_key(p[2], p[3], p[4], p[5], p[6]) for p in slow_packets}
    keys: list[FlowKey] = []
    whole = np.zeros(ngroups, dtype=bool)
    # Per group: the flow exists and is open, and whether each side (relative to the group's
    # first packet) has already shown payload. Such groups need no breaker for those.
    known = np.zeros(ngroups, dtype=bool)
    paid = np.zeros((ngroups, 2), dtype=bool)
    for g in range(ngroups):
        l3 = R_l3[g]
        if R_v6[g]:
            src, dst = data[l3 + 8 : l3 + 24], data[l3 + 24 : l3 + 40]
        else:
            src, dst = data[l3 + 12 : l3 + 16], data[l3 + 16 : l3 + 20]
        pr, sport, dport = R_pr[g], R_sp[g], R_dp[g]
        fkey = flow_key(pr, src, sport, dst, dport)
        keys.append(fkey)
        if g_bad[g] or sport == 53 or dport == 53 or fkey in slow_keys:
            whole[g] = True
            continue
        f = flows.get(fkey)
        if f is None:
            whole[g] = pr == 17
        elif f.closed or f.is_dns or f.nohs is not None:
            whole[g] = True
        else:
            known[g] = True
            if sport == f.oport and src == f.oip:
                paid[g, 0], paid[g, 1] = f.paid
            else:
                paid[g, 1], paid[g, 0] = f.paid
    pw = whole[gid]
    first_feed = packets_of(b, v, np.sort(fidx[o[pw]]))
    if slow_packets:
        first_feed = sorted(first_feed + slow_packets, key=lambda p: p[0])
    feed(first_feed)

    # -- 2. breakers and runs of the other groups -----------------------------------------
    keep = ~pw
    if not keep.any():
        return 0
    pos = np.flatnonzero(keep)  # group-order positions of the walked packets
    m = len(pos)
    fo_ = fidx[o[pos]]
    g_of = gid[pos]
    flags = v.flags[fo_]
    paylen = v.paylen[fo_]
    ts = b.ts_ns[fo_]
    side = (~same[pos]).astype(np.int64)
    tcp = v.proto[fo_] == 6
    newgrp = np.ones(m, dtype=bool)
    newgrp[1:] = g_of[1:] != g_of[:-1]
    gap = np.zeros(m, dtype=np.int64)
    gap[1:] = ts[1:] - ts[:-1]
    hp = paylen > 0
    # First payload of each side within its group.
    first_pay = np.zeros(m, dtype=bool)
    unpaid = ~paid[g_of, side]
    for s in (0, 1):
        cand = np.flatnonzero(hp & (side == s) & unpaid)
        if len(cand):
            gc = g_of[cand]
            firsts = np.ones(len(cand), dtype=bool)
            firsts[1:] = gc[1:] != gc[:-1]
            first_pay[cand[firsts]] = True
    min_idle = min(engine.tcp_idle, engine.udp_idle)
    # Everything from a group's first FIN or RST on: the flow is closing, and closed flows
    # are not accounted for in bulk.
    closing = np.cumsum(tcp & ((flags & (FIN | RST)) != 0))
    gfirst = np.flatnonzero(newgrp)
    base = np.zeros(len(gfirst), dtype=np.int64)
    base[1:] = closing[gfirst[1:] - 1]
    after_close = closing - np.repeat(base, np.diff(np.r_[gfirst, m])) > 0
    brk = (
        after_close
        | (newgrp & ~known[g_of])
        | first_pay
        | (gap >= min_idle)
        | (tcp & (((flags & (SYN | FIN | RST)) != 0) | ((flags & ACK) == 0)))
    )
    prev_brk = np.ones(m, dtype=bool)
    prev_brk[1:] = brk[:-1]
    run_start = ~brk & (prev_brk | newgrp)
    run_id = np.cumsum(run_start) - 1
    nb = np.flatnonzero(~brk)
    bulk = 0
    runs: dict[int, list[int]] = {}
    if len(nb):
        rs = run_id[nb] * 2 + side[nb]
        o2 = np.argsort(rs, kind="stable")
        q = nb[o2]
        rs2 = rs[o2]
        k = len(q)
        segs = np.ones(k, dtype=bool)
        segs[1:] = rs2[1:] != rs2[:-1]
        ss = np.flatnonzero(segs)
        seg_len = np.diff(np.r_[ss, k])
        ends = ss + seg_len - 1
        pl = paylen[q]
        hpq = pl > 0
        seq = v.seq[fo_[q]]
        tq = ts[q]
        seg_of = np.repeat(np.arange(len(ss)), seg_len)
        fpi = np.minimum.reduceat(np.where(hpq, np.arange(k), k - 1), ss)
        s1 = seq[fpi]
        rel = ((seq - s1[seg_of] + (1 << 31)) & M32) - (1 << 31)
        seg_rs = rs2[ss].tolist()
        # Offset of each payload segment from the high-water mark its own predecessors in the
        # run left (a segmented running maximum, made monotone by a per-segment offset).
        lift = seg_of.astype(np.int64) << 41
        ends_rel = np.where(hpq, rel + pl, -_BIG) + lift
        runmax = np.maximum.accumulate(ends_rel) - lift
        prev = np.full(k, -_BIG, dtype=np.int64)
        prev[1:] = runmax[:-1]
        prev[ss] = -_BIG
        later = hpq & (prev > -(_BIG // 2))
        dev = rel - prev
        cols = (
            seg_len.tolist(),
            np.add.reduceat(pl, ss).tolist(),
            np.add.reduceat(hpq.astype(np.int64), ss).tolist(),
            s1.tolist(),
            np.minimum.reduceat(np.where(later, dev, 0), ss).tolist(),
            np.maximum.reduceat(np.where(later, dev, 0), ss).tolist(),
            np.maximum.reduceat(np.where(hpq, rel + pl, -_BIG), ss).tolist(),
            np.maximum.reduceat(np.where(hpq, tq, 0), ss).tolist(),
            np.minimum.reduceat(tq, ss).tolist(),
            np.maximum.reduceat(tq, ss).tolist(),
            np.maximum.reduceat(v.win[fo_[q]], ss).tolist(),
            v.ttl[fo_[q[ends]]].tolist(),
            v.ack[fo_[q[ends]]].tolist(),
            pl[fpi].tolist(),
        )
        for i, r in enumerate(seg_rs):
            runs.setdefault(r >> 1, []).append(i)
    # Walk items (breakers and run starts) in group order.
    items = np.flatnonzero(brk | run_start)
    item_brk = brk[items].tolist()
    item_g = g_of[items].tolist()
    item_run = run_id[items].tolist()
    brk_pos = items[brk[items]]
    brk_packets = packets_of(b, v, fo_[brk_pos])
    run_members: dict[int, npt.NDArray[np.intp]] = {}
    if len(nb):
        nb_runs = run_id[nb]
        bounds = np.flatnonzero(np.r_[True, nb_runs[1:] != nb_runs[:-1]])
        for j, st in enumerate(bounds.tolist()):
            end = bounds[j + 1] if j + 1 < len(bounds) else len(nb)
            run_members[int(nb_runs[st])] = nb[st:end]
    packet = engine.packet
    active = engine.active_ns
    bi = 0
    for is_brk, g, r in zip(item_brk, item_g, item_run, strict=True):
        if is_brk:
            packet(brk_packets[bi])
            bi += 1
            continue
        f = flows.get(keys[g])
        seg_ids = runs[r]
        if f is not None and _apply(f, seg_ids, seg_rs, R_sp[g], R_l3[g], R_v6[g], data,
                                    active, cols):  # fmt: skip
            bulk += sum(cols[0][i] for i in seg_ids)
            continue
        for p in packets_of(b, v, fo_[run_members[r]]):
            packet(p)
    return bulk


def _apply(
    f: Flow,
    seg_ids: list[int],
    seg_rs: list[int],
    rep_sport: int,
    l3: int,
    v6: bool,
    data: bytes,
    active: int,
    cols: tuple[list[int], ...],
) -> bool:
    """Add one run to ``f`` if that provably equals per-packet processing."""
    (L_cnt, L_sum, L_npay, L_s1, L_dmin, L_dmax, L_emax, L_payts, L_tsmin, L_tsmax, L_win,
     L_ttl, L_ack, L_len1) = cols  # fmt: skip
    if f.closed or f.is_dns or f.nohs is not None:
        return False
    tsmin = min(L_tsmin[i] for i in seg_ids)
    tsmax = max(L_tsmax[i] for i in seg_ids)
    if tsmin - f.last >= f.idle_ns or (tsmax - f.start) // active > f.rec_k:
        return False
    src = data[l3 + 8 : l3 + 24] if v6 else data[l3 + 12 : l3 + 16]
    rep_orig = rep_sport == f.oport and src == f.oip
    tcp = f.proto == 6
    plans: list[tuple[int, int, int]] = []
    for i in seg_ids:
        r = seg_rs[i] & 1
        d = r if rep_orig else 1 - r
        grow = 0
        if L_npay[i]:
            if not f.paid[d]:
                return False
            if tcp:
                hi0 = f.hi[d]
                if hi0 is None:
                    return False
                # The first segment is judged against hi0; each later one against the mark its
                # predecessors in the run left, which is past hi0 once o1 + len1 >= 0.
                o1 = _signed(L_s1[i] - hi0)
                limit = f.limit(1 - d)
                if o1 > limit or o1 < -limit:
                    return False
                if L_npay[i] > 1 and (
                    o1 + L_len1[i] < 0 or L_dmax[i] > limit or L_dmin[i] < -limit
                ):
                    return False
                grow = max(0, o1 + L_emax[i])
            else:
                grow = L_sum[i]
        plans.append((i, d, grow))
    for i, d, grow in plans:
        f.p[d] += L_cnt[i]
        f.b[d] += grow
        f.ttl[d] = L_ttl[i]
        if tcp:
            if grow:
                hi0 = f.hi[d]
                assert hi0 is not None
                f.hi[d] = (hi0 + grow) & M32
            f.maxwin[d] = max(f.maxwin[d], L_win[i] << f.scale(d))
            f.acked[d] = L_ack[i]
            if L_npay[i]:
                f.last_data[d] = max(f.last_data[d], L_payts[i])
    if tsmax > f.last:
        f.last = tsmax
    return True
