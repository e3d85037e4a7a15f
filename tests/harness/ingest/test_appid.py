from __future__ import annotations

from harness.ingest._appid import identify
from harness.pcap.dnswire import build_query, build_response, make_record


def _big_response() -> bytes:
    query = build_query("x" * 50 + ".tunnel.example", "TXT", txid=0x8812)
    answers = [make_record("x" * 50 + ".tunnel.example", "TXT", "a" * 200) for _ in range(6)]
    return build_response(query, answers)


def test_whole_dns_response_is_dns() -> None:
    assert identify(_big_response(), tcp=False)[0] == "dns"


def test_dns_cut_by_the_snapshot_length_is_still_dns_not_rtp() -> None:
    """A transaction id starting with binary 10 makes the first byte look like RTP v2."""
    cut = _big_response()[:384]
    assert cut[0] >> 6 == 2
    assert identify(cut, tcp=False)[0] == "rtp"  # without the hint, the weaker heuristic wins
    assert identify(cut, tcp=False, truncated=True)[0] == "dns"


def test_dns_over_tcp_cut_by_the_snapshot_length() -> None:
    msg = _big_response()
    framed = len(msg).to_bytes(2, "big") + msg
    assert identify(framed, tcp=True)[0] == "dns"
    assert identify(framed[:300], tcp=True)[0] is None
    assert identify(framed[:300], tcp=True, truncated=True)[0] == "dns"


def test_truncated_random_rtp_is_still_rtp() -> None:
    rtp = bytes([0x80, 0x60, 0x12, 0x34, 0xAB, 0xCD, 0xEF, 0x01]) + bytes(range(200))
    assert identify(rtp, tcp=False, truncated=True)[0] == "rtp"
