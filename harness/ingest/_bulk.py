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
    """The engine's canonical bidirectional key: the lower (address, port) end first.
    (:meth:`harness.ingest._flows.FlowEngine.packet` inlines the same test, once per packet.)"""
    if src < dst or (src == dst and sport <= dport):
        return (proto, src, sport, dst, dport)
    return (proto, dst, dport, src, sport)


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
    v6 = v.v6[indices]
    src = v.l3[indices] + np.where(v6, 8, 12)
    alen = np.where(v6, 16, 4)
    dst = src + alen
    pay = v.pay_off[indices]
    proto = v.proto[indices]
    opt = v.l4[indices] + 20
    # TCP options: from the end of the fixed header to the payload (or the captured end).
    opt_end = np.where(proto == 6, np.minimum(pay, v.cap_end[indices]), opt)
    cols = [
        x.tolist()
        for x in (
            indices + b.first_index, b.ts_ns[indices], proto, src, dst, dst + alen,
            v.sport[indices], v.dport[indices], v.flags[indices], v.seq[indices], v.ack[indices],
            v.win[indices], v.ttl[indices], v.paylen[indices], pay, pay + v.paycap[indices],
            opt, opt_end,
        )
    ]  # fmt: skip
    return [
        (i, ts, pr, data[s0:d0], sport, data[d0:d1], dport, flags, seq, ack, win, ttl, paylen,
         data[p0:p1], data[o0:o1])
        for i, ts, pr, s0, d0, d1, sport, dport, flags, seq, ack, win, ttl, paylen, p0, p1, o0,
            o1 in zip(*cols, strict=True)
    ]  # fmt: skip


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
    srcs: list[bytes] = []
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
        srcs.append(src)
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
    # Runs, numbered in walk order (run j is the j-th run start): each is one or two segments
    # (its packets from either side), ``seg_first[j]`` up to ``seg_first[j + 1]``.
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
        seg_rs = rs2[ss]
        seg_run = seg_rs >> 1
        seg_first = np.flatnonzero(np.r_[True, seg_run[1:] != seg_run[:-1]])
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
            (seg_rs & 1).tolist(),
            np.add.reduceat(pl, ss).tolist(),
            np.add.reduceat(hpq.astype(np.int64), ss).tolist(),
            s1.tolist(),
            np.minimum.reduceat(np.where(later, dev, 0), ss).tolist(),
            np.maximum.reduceat(np.where(later, dev, 0), ss).tolist(),
            np.maximum.reduceat(np.where(hpq, rel + pl, -_BIG), ss).tolist(),
            np.maximum.reduceat(np.where(hpq, tq, 0), ss).tolist(),
            np.maximum.reduceat(v.win[fo_[q]], ss).tolist(),
            v.ttl[fo_[q[ends]]].tolist(),
            v.ack[fo_[q[ends]]].tolist(),
            pl[fpi].tolist(),
            seg_len.tolist(),
        )
        run_seg = np.r_[seg_first, len(ss)].tolist()
        run_tsmin = np.minimum.reduceat(np.minimum.reduceat(tq, ss), seg_first).tolist()
        run_tsmax = np.maximum.reduceat(np.maximum.reduceat(tq, ss), seg_first).tolist()
        run_cnt = np.add.reduceat(seg_len, seg_first).tolist()
        # Members of each run in walk order (``nb`` is in walk order, runs are contiguous in it).
        nb_runs = run_id[nb]
        run_mem = np.r_[np.flatnonzero(np.r_[True, nb_runs[1:] != nb_runs[:-1]]), len(nb)].tolist()
    # Walk items (breakers and run starts) in group order.
    items = np.flatnonzero(brk | run_start)
    item_brk = brk[items].tolist()
    item_g = g_of[items].tolist()
    brk_pos = items[brk[items]]
    brk_packets = packets_of(b, v, fo_[brk_pos])
    packet = engine.packet
    active = engine.active_ns
    bi = 0
    j = 0
    for is_brk, g in zip(item_brk, item_g, strict=True):
        if is_brk:
            packet(brk_packets[bi])
            bi += 1
            continue
        f = flows.get(keys[g])
        if f is not None and _apply(
            f, run_seg[j], run_seg[j + 1], R_sp[g] == f.oport and srcs[g] == f.oip,
            run_tsmin[j], run_tsmax[j], active, cols,
        ):  # fmt: skip
            bulk += run_cnt[j]
        else:
            for p in packets_of(b, v, fo_[nb[run_mem[j] : run_mem[j + 1]]]):
                packet(p)
        j += 1
    return bulk


def _apply(
    f: Flow,
    first: int,
    end: int,
    rep_orig: bool,
    tsmin: int,
    tsmax: int,
    active: int,
    cols: tuple[list[int], ...],
) -> bool:
    """Add one run (segments ``first`` to ``end`` of ``cols``) to ``f`` if that provably
    equals per-packet processing. ``rep_orig``: the group's first packet is the originator's."""
    (L_side, L_sum, L_npay, L_s1, L_dmin, L_dmax, L_emax, L_payts, L_win, L_ttl, L_ack,
     L_len1, L_cnt) = cols  # fmt: skip
    if f.closed or f.is_dns or f.nohs is not None:
        return False
    if tsmin - f.last >= f.idle_ns or (tsmax - f.start) // active > f.rec_k:
        return False
    tcp = f.proto == 6
    paid = f.paid
    plans: list[tuple[int, int, int]] = []
    for i in range(first, end):
        d = L_side[i] if rep_orig else 1 - L_side[i]
        grow = 0
        npay = L_npay[i]
        if npay:
            if not paid[d]:
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
                if npay > 1 and (o1 + L_len1[i] < 0 or L_dmax[i] > limit or L_dmin[i] < -limit):
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
