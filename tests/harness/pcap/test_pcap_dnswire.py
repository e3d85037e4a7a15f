"""DNS wire format: scapy reads what we build, our parser round-trips it, limits hold."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.dns import DNS

from harness.errors import InputError, UsageError
from harness.pcap.dnswire import (
    QTYPES,
    DnsMessage,
    DnsNameError,
    DnsQuestion,
    DnsRecord,
    DnsValueError,
    DnsWireError,
    build_query,
    build_response,
    encode_message,
    encode_name,
    make_record,
    parse_message,
    qtype_code,
    qtype_name,
    rcode_code,
    record_value,
)

QNAME = "mzxw6ytboi.t.example.com"


@pytest.mark.parametrize(
    ("qtype", "code"),
    [
        ("A", 1),
        ("AAAA", 28),
        ("TXT", 16),
        ("CNAME", 5),
        ("MX", 15),
        ("NULL", 10),
        ("KEY", 25),
        ("txt", 16),
        ("TYPE65399", 65399),
        ("65399", 65399),
        (65399, 65399),
    ],
)
def test_qtype_codes(qtype: str | int, code: int) -> None:
    assert qtype_code(qtype) == code
    query = DNS(build_query(QNAME, qtype, txid=7))
    assert query.qd[0].qtype == code
    assert query.qd[0].qname == (QNAME + ".").encode()
    assert (query.id, query.qr, query.rd, query.qdcount) == (7, 0, 1, 1)


def test_qtype_names_and_bad_types() -> None:
    assert qtype_name(16) == "TXT"
    assert qtype_name(65399) == "TYPE65399"
    for bad in ("BOGUS", 70000, "TYPE70000"):
        with pytest.raises(DnsValueError):
            qtype_code(bad)
    assert rcode_code("nxdomain") == 3
    with pytest.raises(DnsValueError):
        rcode_code("WHAT")


ANSWER_CASES = [
    ("A", "192.0.2.7", lambda rr: rr.rdata == "192.0.2.7"),
    ("AAAA", "2001:db8::7", lambda rr: rr.rdata == "2001:db8::7"),
    ("CNAME", "alias.example.net", lambda rr: rr.rdata == b"alias.example.net."),
    ("TXT", "v=spf1 -all", lambda rr: rr.rdata == [b"v=spf1 -all"]),
    ("TXT", ("a", b"\x00\xff"), lambda rr: rr.rdata == [b"a", b"\x00\xff"]),
    (
        "MX",
        (10, "mx.example.com"),
        lambda rr: (rr.preference, rr.exchange) == (10, b"mx.example.com."),
    ),
    ("MX", "5 mx2.example.com", lambda rr: rr.preference == 5),
    ("NULL", b"\x00\x01binary\xff", lambda rr: bytes(rr.rdata) == b"\x00\x01binary\xff"),
]


@pytest.mark.parametrize(("qtype", "value", "check"), ANSWER_CASES)
def test_responses_parse_in_scapy(qtype: str, value: object, check: object) -> None:
    query = build_query(QNAME, qtype, txid=0xBEEF, edns_payload=1232)
    record = make_record(QNAME, qtype, value, ttl=60)  # type: ignore[arg-type]
    response = build_response(query, [record, record])
    dns = DNS(response)
    assert (dns.id, dns.qr, dns.rd, dns.ra, dns.rcode) == (0xBEEF, 1, 1, 1, 0)
    assert (dns.qdcount, dns.ancount, dns.arcount) == (1, 2, 1)
    assert dns.an[0].rrname == (QNAME + ".").encode()
    assert dns.an[0].ttl == 60
    assert dns.ar[0].type == QTYPES["OPT"]
    assert dns.ar[0].rclass == 1232
    assert check(dns.an[0])  # type: ignore[operator]
    # Round trip through our parser, and through our encoder again.
    parsed = parse_message(response)
    assert parsed.answers == (record, record)
    assert record_value(parsed.answers[0]) == record_value(record)
    assert encode_message(parsed) == response


def test_compression_is_used_and_optional() -> None:
    query = build_query(QNAME, "CNAME", txid=1)
    answers = [make_record(QNAME, "CNAME", "x." + QNAME)]
    packed = build_response(query, answers)
    plain = build_response(query, answers, compress=False)
    assert len(packed) < len(plain)
    assert b"\xc0\x0c" in packed  # the answer's owner points at the question name
    assert parse_message(packed).answers == parse_message(plain).answers
    assert DNS(packed).an[0].rdata == DNS(plain).an[0].rdata == ("x." + QNAME + ".").encode()


def test_nxdomain_and_private_type() -> None:
    query = build_query(QNAME, 65399, txid=3)
    response = build_response(query, rcode="NXDOMAIN")
    dns = DNS(response)
    assert (dns.rcode, dns.ancount, dns.qd[0].qtype) == (3, 0, 65399)
    msg = parse_message(response)
    assert msg.is_response
    assert msg.rcode == 3
    assert msg.questions[0].qtype == 65399


def test_key_and_private_type_answers_as_raw_bytes() -> None:
    for qtype in ("KEY", 65399):
        record = make_record(QNAME, qtype, b"\x01\x02\x03")
        response = build_response(build_query(QNAME, qtype, txid=9), [record])
        assert bytes(DNS(response).an[0].rdata) == b"\x01\x02\x03"
        assert parse_message(response).answers == (record,)


def test_label_and_name_limits() -> None:
    assert encode_name("a" * 63 + ".com")
    with pytest.raises(DnsNameError, match="63"):
        encode_name("a" * 64 + ".com")
    longest = ".".join(["a" * 63] * 3 + ["a" * 61])  # 3*64 + 62 + 1 = 255 octets
    assert len(encode_name(longest)) == 255
    with pytest.raises(DnsNameError, match="255"):
        encode_name(longest + "a")
    for bad in ("a..b", ".a", "caf\u00e9.fr", "a\\", "a\\300"):
        with pytest.raises(DnsNameError):
            encode_name(bad)
    assert issubclass(DnsNameError, UsageError)
    assert encode_name(".") == encode_name("") == b"\x00"
    assert encode_name("Example.COM.") == b"\x07Example\x03COM\x00"


labels = st.lists(st.binary(min_size=1, max_size=63), min_size=0, max_size=3)


@given(labels)
def test_any_label_bytes_round_trip(raw_labels: list[bytes]) -> None:
    wire = b"".join(bytes((len(x),)) + x for x in raw_labels) + b"\x00"
    message = b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + wire + b"\x00\x01\x00\x01"
    name = parse_message(message).questions[0].name
    # The presentation form, escapes and all, encodes back to the same wire name.
    assert encode_name(name) == wire
    assert build_query(name, "A", txid=1) == message[:2] + b"\x01\x00" + message[4:]


@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=40),
    st.sampled_from(["A", "AAAA", "TXT", "CNAME", "MX", "NULL", "KEY", 65399]),
    st.integers(0, 65535),
)
def test_queries_round_trip(label: str, qtype: str | int, txid: int) -> None:
    name = f"{label}.example.org"
    data = build_query(name, qtype, txid=txid)
    msg = parse_message(data)
    assert msg == DnsMessage(
        txid=txid, flags=0x0100, questions=(DnsQuestion(name=name, qtype=qtype_code(qtype)),)
    )
    assert DNS(data).qd[0].qname == (name + ".").encode()


@pytest.mark.parametrize(
    "data",
    [
        b"\x00" * 11,  # short header
        b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03ab",  # label past the end
        b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",  # loop
        b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x01",  # short question
        b"\x00\x01\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00"
        b"\x00\x09\x01",  # rdata past the end
        b"\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff",  # trailing bytes
        b"\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x40" + b"a" * 70,  # label type 01
    ],
)
def test_malformed_messages_raise_input_errors(data: bytes) -> None:
    with pytest.raises(DnsWireError) as info:
        parse_message(data)
    assert isinstance(info.value, InputError)


def test_overlong_compressed_name_is_rejected() -> None:
    # Each name adds 64 octets by pointing at the previous one; the fifth passes 255.
    msg = bytearray(struct.pack("!HHHHHH", 1, 0, 5, 0, 0, 0))
    previous = None
    for _ in range(5):
        start = len(msg)
        msg += b"\x3f" + b"a" * 63
        msg += struct.pack("!H", 0xC000 | previous) if previous is not None else b"\x00"
        msg += b"\x00\x01\x00\x01"
        previous = start
    with pytest.raises(DnsWireError, match="longer than 255"):
        parse_message(bytes(msg))


def test_bad_record_values() -> None:
    with pytest.raises(DnsValueError):
        make_record(QNAME, "A", "not-an-ip")
    with pytest.raises(DnsValueError):
        make_record(QNAME, "TXT", ("x" * 256,))
    with pytest.raises(DnsValueError):
        make_record(QNAME, "KEY", "text is not raw bytes")
    with pytest.raises(DnsValueError):
        build_query(QNAME, "A", txid=70000)


def test_long_txt_value_is_split_into_strings() -> None:
    record = make_record(QNAME, "TXT", "x" * 600)
    assert record_value(record) == (b"x" * 255, b"x" * 255, b"x" * 90)


def test_soa_authority_round_trips() -> None:
    soa = DnsRecord(
        name="example.com",
        rtype=QTYPES["SOA"],
        ttl=900,
        rdata=encode_name("ns1.example.com")
        + encode_name("hostmaster.example.com")
        + struct.pack("!IIIII", 1, 7200, 3600, 1209600, 300),
    )
    response = build_response(build_query(QNAME, "A", txid=5), rcode=3, authorities=[soa])
    assert parse_message(response).authorities == (soa,)
    assert DNS(response).ns[0].mname == b"ns1.example.com."
