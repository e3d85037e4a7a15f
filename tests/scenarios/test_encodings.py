"""Tests for scenarios.encodings: every DNS tunnel payload decodes back to the data it carried."""

from __future__ import annotations

import base64
import itertools
import math
import random
import string
from collections import Counter

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.errors import InvalidParameterError
from scenarios.encodings import (
    DOWNSTREAM,
    IODINE_PRIVATE_QTYPE,
    MAX_LABEL_LEN,
    MAX_NAME_LEN,
    SPECS,
    TOOL_QTYPES,
    WORD_LIST,
    DecodedChunk,
    TunnelEncoding,
    capacity,
    chunk_stream,
    decode_name,
    encode_chunk,
    next_seq,
    reassemble,
    tool_chunk_size,
    tunnel_labels,
)

E = TunnelEncoding
DOMAIN = "t.example"

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?", fullmatch=True)
domains = st.lists(_label, min_size=1, max_size=4).map(".".join)


@st.composite
def enc_domains(draw: st.DrawFn) -> tuple[E, str]:
    enc = draw(st.sampled_from(list(E)))
    if enc is E.DNSCAT2_HEX and draw(st.booleans()):
        return enc, ""  # dnscat2's "dnscat." tag instead of an authoritative domain
    return enc, draw(st.one_of(st.just(DOMAIN), domains))


@st.composite
def chunks(draw: st.DrawFn) -> tuple[E, str, bytes, int, int]:
    enc, domain = draw(enc_domains())
    spec = SPECS[enc]
    session = draw(st.integers(0, spec.max_session))
    seq = draw(st.integers(0, spec.max_seq))
    most = capacity(enc, domain, seq=seq)
    size = draw(st.one_of(st.just(0), st.just(most), st.integers(0, most)))
    return enc, domain, draw(st.binary(min_size=size, max_size=size)), session, seq


def entropy(text: str) -> float:
    """Empirical Shannon entropy of the characters of ``text``, in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def payload_text(names: list[str], enc: E, domain: str = DOMAIN) -> str:
    return "".join("".join(tunnel_labels(n, encoding=enc, domain=domain)) for n in names)


# --- round trip and name structure ----------------------------------------------------------


@given(chunks())
@example((E.IODINE_BASE128, DOMAIN, bytes(range(256))[:204], 15, 127))
@example((E.DNSCAT2_HEX, "", b"", 0, 0))
def test_round_trip(case: tuple[E, str, bytes, int, int]) -> None:
    enc, domain, data, session, seq = case
    name = encode_chunk(data, encoding=enc, domain=domain, session=session, seq=seq)
    assert decode_name(name, encoding=enc, domain=domain) == DecodedChunk(
        session=session, seq=seq, data=data
    )
    assert decode_name(name + ".", encoding=enc, domain=domain).data == data


@given(chunks())
def test_names_are_valid_dns_names_of_the_tools_alphabet(
    case: tuple[E, str, bytes, int, int],
) -> None:
    enc, domain, data, session, seq = case
    name = encode_chunk(data, encoding=enc, domain=domain, session=session, seq=seq)
    labels = name.split(".")
    assert len(name) <= MAX_NAME_LEN
    assert all(1 <= len(label) <= MAX_LABEL_LEN for label in labels)
    assert all(ord(c) <= 0xFF for c in name)  # one octet per character on the wire
    if domain:
        assert name.endswith("." + domain)
    else:
        assert name.startswith("dnscat.")
    tool_chars = set("".join(tunnel_labels(name, encoding=enc, domain=domain)))
    assert tool_chars <= SPECS[enc].alphabet


@given(chunks())
def test_case_insensitive_encodings_survive_case_changes(
    case: tuple[E, str, bytes, int, int],
) -> None:
    enc, domain, data, session, seq = case
    name = encode_chunk(data, encoding=enc, domain=domain, session=session, seq=seq)
    if SPECS[enc].case_insensitive:
        assert decode_name(name.upper(), encoding=enc, domain=domain).data == data
    # the domain part may always change case (resolvers do 0x20 randomisation)
    cut = len(name) - len(domain)
    swapped = name[:cut] + name[cut:].upper()
    assert decode_name(swapped, encoding=enc, domain=domain).data == data


@pytest.mark.parametrize(
    ("enc", "first", "rest"),
    [
        (E.IODINE_BASE32, 62, 57),  # 5 header chars + 57 payload chars, then 57 (build_hostname)
        (E.IODINE_BASE64, 62, 57),
        (E.IODINE_BASE128, 62, 57),
        (E.DNSCAT2_HEX, 60, 60),  # driver_dns.c breaks every 60 hex characters
        (E.DNS2TCP_BASE64, 63, 63),  # dns_encode: full 63-character labels
        (E.DET_HEX, 63, 63),  # plugins/dns.py: data[:63] per label
        (E.WORDS, 60, 60),  # 15 four-letter words
    ],
)
def test_label_layout_follows_the_tool(enc: E, first: int, rest: int) -> None:
    most = capacity(enc, DOMAIN)
    labels = tunnel_labels(
        encode_chunk(bytes(most), encoding=enc, domain=DOMAIN, session=1, seq=1),
        encoding=enc,
        domain=DOMAIN,
    )
    assert len(labels[0]) == first
    assert all(len(label) == rest for label in labels[1:-1])
    assert 0 < len(labels[-1]) <= rest


# --- known answers: the encodings are the tools' own ------------------------------------------


def _translate(text: str, source: str, target: str) -> str:
    return text.translate(str.maketrans(source, target))


STD_B32 = string.ascii_uppercase + "234567"
STD_B64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"


@given(st.binary(max_size=140))
def test_iodine_base32_is_rfc4648_bit_order_with_iodines_alphabet(data: bytes) -> None:
    name = encode_chunk(data, encoding=E.IODINE_BASE32, domain=DOMAIN, session=10, seq=0)
    expected = base64.b32encode(data).decode().rstrip("=")
    payload = payload_text([name], E.IODINE_BASE32)[5:]
    assert payload == _translate(expected, STD_B32, "abcdefghijklmnopqrstuvwxyz012345")


@given(st.binary(max_size=170))
def test_iodine_base64_uses_iodines_alphabet(data: bytes) -> None:
    name = encode_chunk(data, encoding=E.IODINE_BASE64, domain=DOMAIN, session=0, seq=0)
    expected = base64.b64encode(data).decode().rstrip("=")
    iodine = string.ascii_lowercase + string.ascii_uppercase + "-" + string.digits + "+"
    assert payload_text([name], E.IODINE_BASE64)[5:] == _translate(expected, STD_B64, iodine)


def test_iodine_base128_alphabet_and_header() -> None:
    name = encode_chunk(
        bytes([0xFF] * 7), encoding=E.IODINE_BASE128, domain=DOMAIN, session=15, seq=127
    )
    payload = payload_text([name], E.IODINE_BASE128)
    # user id 'f'; seqno 7 + fragment 15 -> base32 31 '5', then 24 'y'; zero flags 'a'; CMC 127 % 36
    assert payload[:5] == "f5yat"
    assert payload[5:] == chr(0xFD) * 8  # 56 one-bits: eight times the last character, 0xFD
    high = {c for c in SPECS[E.IODINE_BASE128].alphabet if ord(c) > 0x7F}
    assert high == {chr(c) for c in range(0xBC, 0xFE)}


def test_dnscat2_packet_is_a_hex_msg() -> None:
    name = encode_chunk(b"AAA", encoding=E.DNSCAT2_HEX, domain=DOMAIN, session=0x1234, seq=0xBEEF)
    packet = bytes.fromhex(payload_text([name], E.DNSCAT2_HEX))
    assert packet[2] == 0x01  # MESSAGE_TYPE_MSG
    assert packet[3:5] == b"\x12\x34"
    assert packet[5:7] == b"\xbe\xef"
    assert packet[9:] == b"AAA"
    assert name.endswith("414141.t.example")
    tagged = encode_chunk(b"AAA", encoding=E.DNSCAT2_HEX, domain="", session=1, seq=2)
    assert tagged.startswith("dnscat.")
    assert tagged.endswith("414141")


@given(st.binary(max_size=170))
def test_dns2tcp_is_standard_base64_of_t_packet(data: bytes) -> None:
    name = encode_chunk(data, encoding=E.DNS2TCP_BASE64, domain=DOMAIN, session=7, seq=9)
    text = payload_text([name], E.DNS2TCP_BASE64)
    packet = base64.b64decode(text + "=" * (-len(text) % 4))
    assert base64.b64encode(packet).decode().rstrip("=") == text
    assert packet[0:2] == b"\x00\x07"
    assert packet[4:6] == b"\x00\x09"
    assert packet[6] == (0x08 if data else 0x04)  # DATA, or NOP with no data
    assert packet[7:] == data


def test_det_double_hex_message_with_clear_job_id() -> None:
    name = encode_chunk(b"\x00\xff", encoding=E.DET_HEX, domain=DOMAIN, session=0, seq=42)
    text = payload_text([name], E.DET_HEX)
    assert text == "aaaaaaa" + b"aaaaaaa|!|42|!|00ff".hex()
    last = SPECS[E.DET_HEX].max_session
    assert payload_text(
        [encode_chunk(b"", encoding=E.DET_HEX, domain=DOMAIN, session=last, seq=0)], E.DET_HEX
    ).startswith("9999999")


def test_word_list() -> None:
    assert len(WORD_LIST) == 256
    assert len(set(WORD_LIST)) == 256
    assert all(len(w) == 4 and w.isascii() and w.isalpha() and w.islower() for w in WORD_LIST)
    name = encode_chunk(b"\x00\xff", encoding=E.WORDS, domain=DOMAIN, session=1, seq=2)
    assert name == "ableacid" + "ablealso" + WORD_LIST[0] + WORD_LIST[255] + "." + DOMAIN


# --- capacity -------------------------------------------------------------------------------

CAPACITY_T_EXAMPLE = {
    # 234 payload characters fit beside the 5-char header and 4 dots: floor(234 * bits / 8)
    E.IODINE_BASE32: 146,
    E.IODINE_BASE64: 175,
    E.IODINE_BASE128: 204,
    # 240 hex characters in 4 labels: 120 packet bytes less the 9-byte MSG header
    E.DNSCAT2_HEX: 111,
    # 239 base64 characters: 179 bytes less the 7-byte header
    E.DNS2TCP_BASE64: 173,
    # 239 characters less the 7-char job id: 116 message chars, less 'jobid|!|999999|!|'
    E.DET_HEX: 48,
    # 240 characters: 60 words, less 4 header words
    E.WORDS: 56,
}


@pytest.mark.parametrize("enc", list(E))
def test_capacity_for_t_example(enc: E) -> None:
    assert capacity(enc, DOMAIN) == CAPACITY_T_EXAMPLE[enc]
    assert capacity(enc.value, DOMAIN + ".") == CAPACITY_T_EXAMPLE[enc]


@given(enc_domains(), st.data())
def test_capacity_is_exact(case: tuple[E, str], data: st.DataObject) -> None:
    enc, domain = case
    spec = SPECS[enc]
    seq = data.draw(st.integers(0, spec.max_seq))
    session = data.draw(st.integers(0, spec.max_session))
    header_only = len(encode_chunk(b"", encoding=enc, domain=domain, session=session, seq=seq))
    limit = data.draw(st.integers(header_only, MAX_NAME_LEN))
    most = capacity(enc, domain, limit, seq=seq)

    def encode(size: int) -> str:
        return encode_chunk(
            bytes(size), encoding=enc, domain=domain, session=session, seq=seq, max_name_len=limit
        )

    assert len(encode(most)) <= limit
    with pytest.raises(InvalidParameterError) as info:
        encode(most + 1)
    assert info.value.name == "data"
    # without seq, capacity holds for every seq: it is the capacity at the widest one
    widest = encode_chunk(b"", encoding=enc, domain=domain, session=session, seq=spec.max_seq)
    if len(widest) <= limit:
        assert capacity(enc, domain, limit) == capacity(enc, domain, limit, seq=spec.max_seq)
        assert capacity(enc, domain, limit) <= most
    else:
        with pytest.raises(InvalidParameterError):
            capacity(enc, domain, limit)


@given(enc_domains())
def test_one_byte_over_capacity_spills_into_a_second_name(case: tuple[E, str]) -> None:
    enc, domain = case
    most = capacity(enc, domain)
    assert len(chunk_stream(bytes(most), encoding=enc, domain=domain, session=0)) == 1
    names = chunk_stream(bytes(most + 1), encoding=enc, domain=domain, session=0)
    assert len(names) == 2
    assert [len(decode_name(n, encoding=enc, domain=domain).data) for n in names] == [most, 1]


def test_det_capacity_depends_on_the_width_of_the_packet_index() -> None:
    assert capacity(E.DET_HEX, DOMAIN, seq=0) == 51
    assert capacity(E.DET_HEX, DOMAIN, seq=99) == 50
    assert capacity(E.DET_HEX, DOMAIN) == capacity(E.DET_HEX, DOMAIN, seq=999_999) == 48


def test_header_that_does_not_fit_is_a_usage_error() -> None:
    with pytest.raises(InvalidParameterError) as info:
        capacity(E.WORDS, DOMAIN, 20)
    assert info.value.name == "max_name_len"
    with pytest.raises(InvalidParameterError):
        chunk_stream(b"x", encoding=E.WORDS, domain=DOMAIN, session=0, max_name_len=20)
    assert capacity(E.WORDS, DOMAIN, 26) == 0  # header only: 16 letters, a dot, the domain
    with pytest.raises(InvalidParameterError):
        chunk_stream(b"x", encoding=E.WORDS, domain=DOMAIN, session=0, max_name_len=26)


@pytest.mark.parametrize("enc", list(E))
def test_tool_chunk_size_is_within_capacity(enc: E) -> None:
    assert 0 < tool_chunk_size(enc, DOMAIN) <= capacity(enc, DOMAIN)


def test_tool_chunk_sizes_for_t_example() -> None:
    assert tool_chunk_size(E.IODINE_BASE32, DOMAIN) == 146  # iodine fills names to 253
    assert tool_chunk_size(E.DNSCAT2_HEX, DOMAIN) == 103  # MAX_DNSCAT_LENGTH: 112 - 9
    assert tool_chunk_size(E.DNSCAT2_HEX, "") == 106
    assert tool_chunk_size(E.DNS2TCP_BASE64, DOMAIN) == 128  # 138 - 7 - 3
    assert tool_chunk_size(E.DET_HEX, DOMAIN) == capacity(E.DET_HEX, DOMAIN, 252)


# --- streams --------------------------------------------------------------------------------


@settings(max_examples=60)
@given(enc_domains(), st.binary(max_size=1500), st.data())
def test_chunk_stream_reassemble_round_trip(
    case: tuple[E, str], payload: bytes, data: st.DataObject
) -> None:
    enc, domain = case
    spec = SPECS[enc]
    session = data.draw(st.integers(0, spec.max_session))
    first_seq = data.draw(st.integers(0, spec.max_seq))
    size = data.draw(st.one_of(st.none(), st.integers(1, capacity(enc, domain))))
    names = chunk_stream(
        payload, encoding=enc, domain=domain, session=session, chunk_size=size, first_seq=first_seq
    )
    assert reassemble(names, encoding=enc, domain=domain) == payload
    assert reassemble(names, encoding=enc, domain=domain, session=session) == payload
    step = size or capacity(enc, domain)
    assert len(names) == -(-len(payload) // step)
    decoded = [decode_name(n, encoding=enc, domain=domain) for n in names]
    assert all(d.session == session for d in decoded)
    if decoded:
        assert decoded[0].seq == first_seq
    for before, after in itertools.pairwise(decoded):
        assert after.seq == next_seq(enc, before.seq, len(before.data))


@given(enc_domains(), st.binary(min_size=3, max_size=600))
def test_reassemble_rejects_gaps_and_reordering(case: tuple[E, str], payload: bytes) -> None:
    enc, domain = case
    names = chunk_stream(payload, encoding=enc, domain=domain, session=3, chunk_size=1)
    with pytest.raises(InvalidParameterError):
        reassemble([names[0], *names[2:]], encoding=enc, domain=domain)
    with pytest.raises(InvalidParameterError):
        reassemble([names[1], names[0], *names[2:]], encoding=enc, domain=domain)
    with pytest.raises(InvalidParameterError):
        reassemble(names, encoding=enc, domain=domain, session=4)
    other = encode_chunk(b"z", encoding=enc, domain=domain, session=2, seq=0)
    with pytest.raises(InvalidParameterError):
        reassemble([*names, other], encoding=enc, domain=domain)


def test_empty_stream() -> None:
    assert chunk_stream(b"", encoding=E.WORDS, domain=DOMAIN, session=0) == []
    assert reassemble([], encoding=E.WORDS, domain=DOMAIN) == b""


def test_next_seq() -> None:
    assert next_seq(E.DNSCAT2_HEX, 0xFFFF, 3) == 2  # dnscat2 counts bytes, mod 2**16
    assert next_seq(E.IODINE_BASE32, 127, 100) == 0  # 3-bit seqno + 4-bit fragment wrap
    assert next_seq(E.DET_HEX, 5, 40) == 6


# --- determinism ----------------------------------------------------------------------------


@given(enc_domains(), st.binary(max_size=400))
def test_deterministic_and_independent_of_global_random(
    case: tuple[E, str], payload: bytes
) -> None:
    enc, domain = case
    random.seed(1)
    first = chunk_stream(payload, encoding=enc, domain=domain, session=1)
    random.seed(2)
    random.random()
    assert chunk_stream(payload, encoding=enc, domain=domain, session=1) == first


# --- the words encoding's character statistics ------------------------------------------------


@settings(max_examples=30)
@given(st.integers(0, 2**32), st.integers(256, 2048))
def test_words_have_lower_character_entropy_than_base32_and_wider_codecs(
    seed: int, size: int
) -> None:
    # Real property: concatenated English words have about 4.2 bits of unigram entropy per
    # character (the letter entropy of English), base32 names about 5, base64 6, base128 7.
    # Not claimed against hex: 16 symbols cap hex at 4 bits, below English letters.
    # Tunnel payloads are compressed or encrypted, so the data is random bytes (for constant
    # data, base32 names would be all 'a' and the words names 'able' repeated: not a fair test).
    payload = random.Random(seed).randbytes(size)

    def stream(enc: E) -> str:
        return payload_text(chunk_stream(payload, encoding=enc, domain=DOMAIN, session=9), enc)

    words = entropy(stream(E.WORDS))
    for enc in (E.IODINE_BASE32, E.IODINE_BASE64, E.IODINE_BASE128, E.DNS2TCP_BASE64):
        assert words < entropy(stream(enc)), enc


@settings(max_examples=30)
@given(st.binary(min_size=64, max_size=2048))
def test_words_carry_fewer_bits_per_character_than_hex(payload: bytes) -> None:
    def chars(enc: E) -> int:
        names = chunk_stream(payload, encoding=enc, domain=DOMAIN, session=9)
        return len(payload_text(names, enc))

    # data bits per payload character: words 8 bits per 4 letters, hex 8 bits per 2 digits
    assert 8 * len(payload) / chars(E.WORDS) < 8 * len(payload) / chars(E.DNSCAT2_HEX)
    assert 8 * len(payload) / chars(E.WORDS) < 8 * len(payload) / chars(E.IODINE_BASE32)


def test_words_names_contain_no_digits() -> None:
    names = chunk_stream(bytes(range(256)) * 2, encoding=E.WORDS, domain=DOMAIN, session=0xFFFF)
    assert not any(c.isdigit() for c in payload_text(names, E.WORDS))


# --- response-side data ---------------------------------------------------------------------


def test_qtypes_and_downstream_cover_every_encoding() -> None:
    assert set(TOOL_QTYPES) == set(E) == set(DOWNSTREAM) == set(SPECS)
    for enc in E:
        assert TOOL_QTYPES[enc]
        assert set(DOWNSTREAM[enc]) <= set(TOOL_QTYPES[enc])
        assert SPECS[enc].encoding is enc
    assert TOOL_QTYPES[E.IODINE_BASE32][:2] == ("NULL", f"TYPE{IODINE_PRIVATE_QTYPE}")
    assert TOOL_QTYPES[E.DNSCAT2_HEX][:3] == ("TXT", "CNAME", "MX")
    assert TOOL_QTYPES[E.DNS2TCP_BASE64] == ("TXT", "KEY")


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"encoding": "iodine-base16"}, "encoding"),
        ({"domain": ""}, "domain"),
        ({"domain": "-bad.example"}, "domain"),
        ({"domain": "a..b"}, "domain"),
        ({"domain": 5}, "domain"),
        ({"session": 16}, "session"),
        ({"session": -1}, "session"),
        ({"session": True}, "session"),
        ({"seq": 128}, "seq"),
        ({"seq": 1.0}, "seq"),
        ({"max_name_len": 254}, "max_name_len"),
        ({"max_name_len": 0}, "max_name_len"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], param: str) -> None:
    args: dict[str, object] = {
        "encoding": E.IODINE_BASE32,
        "domain": DOMAIN,
        "session": 0,
        "seq": 0,
        "max_name_len": MAX_NAME_LEN,
    }
    args.update(kwargs)
    with pytest.raises(InvalidParameterError) as info:
        encode_chunk(b"x", **args)  # type: ignore[arg-type]
    assert info.value.name == param


def test_invalid_stream_arguments() -> None:
    for size in (0, capacity(E.WORDS, DOMAIN) + 1):
        with pytest.raises(InvalidParameterError) as info:
            chunk_stream(b"xy", encoding=E.WORDS, domain=DOMAIN, session=0, chunk_size=size)
        assert info.value.name == "chunk_size"
    with pytest.raises(InvalidParameterError) as info:
        chunk_stream("text", encoding=E.WORDS, domain=DOMAIN, session=0)  # type: ignore[arg-type]
    assert info.value.name == "data"
    with pytest.raises(InvalidParameterError):
        reassemble("one.t.example", encoding=E.WORDS, domain=DOMAIN)


def _name(enc: E = E.IODINE_BASE32, data: bytes = b"hello") -> str:
    return encode_chunk(data, encoding=enc, domain=DOMAIN, session=1, seq=1)


@pytest.mark.parametrize(
    ("enc", "name"),
    [
        (E.IODINE_BASE32, _name().replace(DOMAIN, "other.example")),
        (E.IODINE_BASE32, DOMAIN),
        (E.IODINE_BASE32, "ab." + DOMAIN),  # shorter than the header
        (E.IODINE_BASE32, "g" + _name()[1:]),  # user id not hex
        (E.IODINE_BASE32, _name()[: -len(DOMAIN) - 3] + "." + DOMAIN),  # truncated payload
        (E.IODINE_BASE32, "0aaaaab." + DOMAIN),  # non-zero padding bits: iodine never writes them
        (E.IODINE_BASE32, "a" * 64 + "." + DOMAIN),  # label too long
        (E.IODINE_BASE32, ("a" * 60 + ".") * 5 + DOMAIN),  # name too long
        (E.IODINE_BASE64, _name(E.IODINE_BASE64)[:6] + "_" + _name(E.IODINE_BASE64)[7:]),
        (E.DNSCAT2_HEX, "00010200000000000041." + DOMAIN),  # type 2 (FIN), not MSG
        (E.DNSCAT2_HEX, "0001." + DOMAIN),
        (E.DNSCAT2_HEX, "zz" + _name(E.DNSCAT2_HEX)[2:]),
        (E.DNS2TCP_BASE64, "AAAAAAAAAg." + DOMAIN),  # type 0x02 (ERR)
        (E.DNS2TCP_BASE64, "AA." + DOMAIN),
        (E.DET_HEX, "abc." + DOMAIN),
        (E.DET_HEX, "aaaaaaa" + b"bbbbbbb|!|1|!|00".hex() + "." + DOMAIN),  # job id mismatch
        (E.DET_HEX, "aaaaaaa" + b"aaaaaaa|!|01|!|00".hex() + "." + DOMAIN),  # not canonical
        (E.DET_HEX, "aaaaaaa" + b"aaaaaaa|!|1|!|0".hex() + "." + DOMAIN),
        (E.DET_HEX, "aaaaaaa" + "ff" + "." + DOMAIN),
        (E.WORDS, "ableableableabl." + DOMAIN),
        (E.WORDS, "ableableablexxxx." + DOMAIN),
        (E.WORDS, "ableable." + DOMAIN),
    ],
)
def test_decoder_rejects_what_the_encoder_cannot_write(enc: E, name: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        decode_name(name, encoding=enc, domain=DOMAIN)
    assert info.value.name == "name"


def test_dnscat2_tag_form_needs_the_tag() -> None:
    with pytest.raises(InvalidParameterError):
        decode_name(_name(E.DNSCAT2_HEX), encoding=E.DNSCAT2_HEX, domain="")
