"""Connection list syntax, the hop-by-hop set, and segregation (RFC 9110 §5.6.1, §7.6.1)."""

from __future__ import annotations

import pytest

from onehop.core import HOP_BY_HOP_FIELDS, Headers, KeepAliveParams, parse_token_list, split_headers
from onehop.errors import InvalidConnectionHeader, InvalidHeaderToSend


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
