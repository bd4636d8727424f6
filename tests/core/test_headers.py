"""Fields, list syntax, the hop-by-hop set and segregation (RFC 9110 §5, §7.6.1), and
the form in which fields are sent (RFC 9112 §5).

``Headers`` has fast paths of its own: a list of byte pairs is checked by one
expression (against the checked loop a generator takes), and its field lines are
made from that check's joined form (against joining the lines one by one).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onehop.core import (
    HOP_BY_HOP_FIELDS,
    WRITER_OWNED_FIELDS,
    ConnectionInfo,
    Headers,
    KeepAliveParams,
    parse_token_list,
    split_headers,
)
from onehop.core.headers import WireFields
from onehop.errors import HopByHopInHeaders, InvalidConnectionHeader, InvalidHeaderToSend

SETTINGS = settings(max_examples=400, deadline=None)


def test_connection_options_are_case_insensitive_tokens_rfc9110_7_6_1() -> None:
    assert parse_token_list([b"Close, Keep-Alive"]) == {b"close", b"keep-alive"}


def test_list_allows_empty_elements_and_ows_across_lines_rfc9110_5_6_1() -> None:
    assert parse_token_list([b" ,, foo ,\t", b"", b"bar,"]) == {b"foo", b"bar"}


@pytest.mark.parametrize("value", [b"close;x", b"a b", b'"close"', b"x/y", b"\xffz"])
def test_a_member_that_is_not_a_token_is_a_protocol_error_rfc9110_5_6_1(value: bytes) -> None:
    with pytest.raises(InvalidConnectionHeader):
        parse_token_list([value])


def test_fixed_hop_by_hop_set_is_the_rfc_list() -> None:
    assert {
        b"connection", b"keep-alive", b"proxy-connection", b"te", b"transfer-encoding",
        b"trailer", b"upgrade", b"proxy-authorization", b"proxy-authenticate",
    } == HOP_BY_HOP_FIELDS


def test_fields_named_in_connection_are_split_from_end_to_end_rfc9110_7_6_1() -> None:
    headers, conn = split_headers(
        [("Host", "a"), ("Connection", "X-Foo"), ("X-Foo", "1"), ("connection", " x-bar "),
         ("X-Bar", "2"), ("Keep-Alive", "timeout=5"), ("Accept", "*/*")]
    )
    assert headers.raw() == [(b"Host", b"a"), (b"Accept", b"*/*")]
    assert conn.options == {b"x-foo", b"x-bar"}
    assert [n for n, _ in conn.fields] == [b"Connection", b"X-Foo", b"connection", b"X-Bar",
                                          b"Keep-Alive"]


def test_no_hop_by_hop_field_keeps_order_and_raw_case() -> None:
    headers, conn = split_headers([("X-B", "1"), ("x-a", "2"), ("HOST", "h")])
    assert headers.raw() == [(b"X-B", b"1"), (b"x-a", b"2"), (b"HOST", b"h")]
    assert not conn.options and not conn.fields


def test_keep_alive_parameters_parsed_rfc7230_a_1_2() -> None:
    params = KeepAliveParams.parse([b"timeout=5, max=100"])
    assert (params.timeout, params.max) == (5, 100)
    assert params.to_value() == b"timeout=5, max=100"


def test_malformed_keep_alive_parameters_are_ignored() -> None:
    params = KeepAliveParams.parse([b"timeout=abc, max=-1, foo"])
    assert (params.timeout, params.max) == (None, None)


def test_headers_lookup_is_case_insensitive_and_keeps_all_lines() -> None:
    h = Headers([("Accept", "a"), ("ACCEPT", "b")])
    assert h.get("accept") == b"a"
    assert h.get_all(b"Accept") == [b"a", b"b"]
    assert "aCcEpT" in h


@pytest.mark.parametrize(
    ("name", "value"),
    [("Bad Name", "v"), ("X", "a\r\nb"), ("X", "nul\x00"), ("", "v"), ("X", "a\nb"),
     ("A\nB", "v"), ("X", "\n")],
)
def test_invalid_fields_to_send_are_rejected_rfc9110_5(name: str, value: str) -> None:
    with pytest.raises(InvalidHeaderToSend):
        Headers([(name, value)])


def test_lf_inside_one_of_several_fields_is_rejected_rfc9110_5_5() -> None:
    with pytest.raises(InvalidHeaderToSend):
        Headers([("A", "1"), ("B", "x\ny"), ("C", "3")])
    with pytest.raises(InvalidHeaderToSend):
        Headers([("A", "1"), ("B\nC", "2")])


# --- Headers: fast (list of byte pairs) against slow (a generator) ---------------------------

_PAIR_BITS = [b"a", b"X-Y", b" ", b"\t", b"", b":", b"\n", b"\r", b"\x00", b"\x7f", b"\xe9", b"v"]


def _build(pairs: Any) -> Any:
    try:
        return Headers(pairs).fields
    except InvalidHeaderToSend:
        return InvalidHeaderToSend


@SETTINGS
@given(st.lists(st.tuples(st.lists(st.sampled_from(_PAIR_BITS), max_size=3).map(b"".join),
                          st.lists(st.sampled_from(_PAIR_BITS), max_size=4).map(b"".join)),
                max_size=4))
def test_headers_fast_path_agrees_with_the_checked_loop(pairs: list[tuple[bytes, bytes]]) -> None:
    assert _build(pairs) == _build(iter(pairs)) == _build(tuple(pairs))


def test_headers_accept_str_and_strip_ows() -> None:
    want = [(b"a", b"A", b"x y"), (b"b", b"B", b"")]
    assert Headers([(b"A", b" x y\t"), (b"B", b"  ")]).fields == want
    assert Headers([("A", "x y"), ("B", "")]).fields == want
    with pytest.raises(InvalidHeaderToSend):
        Headers([(b"A:B", b"x")])
    with pytest.raises(InvalidHeaderToSend):
        Headers([(b"A", b"x\nB\x00y")])


@SETTINGS
@given(st.lists(st.tuples(st.lists(st.sampled_from(_PAIR_BITS), max_size=3).map(b"".join),
                          st.lists(st.sampled_from(_PAIR_BITS), max_size=4).map(b"".join)),
                max_size=4))
def test_field_lines_from_the_checked_form_are_the_joined_lines_rfc9112_5(
    pairs: list[tuple[bytes, bytes]],
) -> None:
    try:
        headers = Headers(pairs)
        wire = headers.wire()
    except (InvalidHeaderToSend, HopByHopInHeaders):
        return
    assert wire.block == b"\r\n".join(b"%s: %s" % (f[1], f[2]) for f in headers.fields)
    assert wire.block == WireFields(headers.fields).block


# --- the public ways in -----------------------------------------------------------------------


def test_from_parsed_wraps_the_triples_without_copying_or_checking() -> None:
    triples = [(b"x-a", b"X-A", b"1"), (b"x-b", b"X-B", b"2")]
    headers = Headers.from_parsed(triples)
    assert headers.fields is triples
    assert headers.raw() == [(b"X-A", b"1"), (b"X-B", b"2")]
    # The names other packages used still work while they move over.
    assert Headers._trusted(triples).fields is triples and headers._fields is triples


def test_first_gives_the_first_value_of_a_lower_case_name() -> None:
    headers = Headers([("Accept", "a"), ("ACCEPT", "b")])
    assert headers.first(b"accept") == b"a"
    assert headers.first(b"host") is None


def test_lower_items_are_the_asgi_pairs() -> None:
    headers = Headers([("Content-Type", "t"), ("X-A", "1")])
    assert headers.lower_items() == [(b"content-type", b"t"), (b"x-a", b"1")]


def test_connection_info_from_parsed_keeps_its_parts() -> None:
    info = ConnectionInfo.from_parsed(frozenset({b"close"}),
                                      [(b"keep-alive", b"Keep-Alive", b"timeout=5")])
    assert info.close and info.keep_alive_params.timeout == 5
    assert ConnectionInfo._trusted(info.options, info.fields.fields) == info


# --- what is sent -----------------------------------------------------------------------------


def test_a_hop_by_hop_field_is_never_sent_as_end_to_end_rfc9110_7_6_1() -> None:
    for name in [*HOP_BY_HOP_FIELDS, b"close"]:
        with pytest.raises(HopByHopInHeaders):
            Headers([(name, b"1")]).wire()


def test_the_connection_line_names_what_a_recipient_may_not_know_rfc9110_7_6_1() -> None:
    info = ConnectionInfo(["x-opt"], [("Upgrade", "ws"), ("Keep-Alive", "timeout=5"),
                                      ("Trailer", "X-T"), ("X-Hop", "1")])
    assert info.lines(True, False).split(b"\r\n") == [
        b"Upgrade: ws", b"Keep-Alive: timeout=5", b"Trailer: X-T", b"X-Hop: 1",
        b"Connection: upgrade, keep-alive, x-hop, x-opt"]


def test_a_closing_message_says_close_and_drops_keep_alive_hints_rfc9112_9_6() -> None:
    info = ConnectionInfo(fields=[("Keep-Alive", "timeout=5")])
    assert info.lines(False, True) == b"Connection: close"
    assert info.lines(True, True) == b"Keep-Alive: timeout=5\r\nConnection: keep-alive"


def test_fields_the_writer_owns_are_not_copied() -> None:
    info = ConnectionInfo(fields=[(name, b"x") for name in sorted(WRITER_OWNED_FIELDS)])
    for persist in (True, False):
        for peer_10 in (True, False):
            lines = info.lines(persist, peer_10)
            assert lines == info.compose(persist, peer_10)
            assert all(not line.lower().startswith(tuple(WRITER_OWNED_FIELDS))
                       or line.startswith(b"Connection: ")
                       for line in lines.split(b"\r\n"))
    assert info.lines(True, False) == b""
