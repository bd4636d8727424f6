"""How long a body is (RFC 9112 §6): the rules for received messages and for ours.

The received rules take their usual cases first (:func:`request_framing`,
:func:`response_framing`); a hypothesis test holds them to a plain transcription of
RFC 9112 §6.3 on the same inputs: same framing and length, or the same error.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onehop.core.framing import (
    Framing,
    framing_to_send,
    is_chunked,
    length_to_send,
    message_framing,
    parse_content_length,
    request_framing,
    response_framing,
)
from onehop.errors import ConflictingFraming, FramingMismatch, ProtocolError

SETTINGS = settings(max_examples=600, deadline=None)


def rfc9112_6_3(
    special: dict[bytes, list[bytes]] | None, version: bytes, method: bytes, status: int | None
) -> tuple[Framing, int]:
    """RFC 9112 §6.3, one numbered rule after the other, as the reference."""
    if status is not None:
        # (1) HEAD, 1xx, 204, 304: no content, whatever the fields say.
        if method == b"HEAD" or 100 <= status <= 199 or status in (204, 304):
            return Framing.NO_BODY, 0
        # (2) a 2xx to CONNECT: a tunnel.
        if method == b"CONNECT" and 200 <= status <= 299:
            return Framing.TUNNEL, 0
    special = special or {}
    te, cl = special.get(b"transfer-encoding"), special.get(b"content-length")
    if te is not None:
        # (3) both: "ought to be handled as an error"; TE in HTTP/1.0 is not to be trusted.
        if cl is not None or version == b"1.0":
            raise ConflictingFraming("framing")
        is_chunked(te)  # (4) chunked, last and only: else 501 or 400
        return Framing.CHUNKED, 0
    if cl is not None:
        return Framing.LENGTH, parse_content_length(cl)  # (5)
    if status is None:
        return Framing.NO_BODY, 0  # (6)
    return Framing.UNTIL_CLOSE, 0  # (7)


def outcome(rule: Any, *args: Any) -> Any:
    try:
        return rule(*args)
    except ProtocolError as exc:
        return type(exc)


_TE = [b"chunked", b"Chunked", b" chunked ", b"gzip, chunked", b"chunked, chunked", b"",
       b"gzip", b"chunked;q=1", b",chunked,"]
_CL = [b"5", b"0", b"005", b"5, 5", b"5,6", b"x", b"", b" 5", b"+5", b"-1",
       b"123456789012345678", b"1234567890123456789", b"\xd9\xa5"]
specials = st.one_of(
    st.none(),
    st.fixed_dictionaries({}, optional={
        b"transfer-encoding": st.lists(st.sampled_from(_TE), min_size=1, max_size=2),
        b"content-length": st.lists(st.sampled_from(_CL), min_size=1, max_size=2),
        b"host": st.just([b"a"]),
    }),
)
versions = st.sampled_from([b"1.1", b"1.0"])
methods = st.sampled_from([b"GET", b"HEAD", b"CONNECT", b"POST"])
statuses = st.sampled_from([100, 101, 199, 200, 204, 299, 300, 304, 404, 999])


@SETTINGS
@given(specials, versions)
def test_request_framing_is_rfc9112_6_3_for_requests(
    special: dict[bytes, list[bytes]] | None, version: bytes
) -> None:
    want = outcome(rfc9112_6_3, special, version, b"GET", None)
    assert outcome(request_framing, special, version) == want
    assert outcome(lambda: message_framing(special, version, request_method=b"POST",
                                           status_code=None)) == want


@SETTINGS
@given(specials, versions, methods, statuses)
def test_response_framing_is_rfc9112_6_3_for_responses(
    special: dict[bytes, list[bytes]] | None, version: bytes, method: bytes, status: int
) -> None:
    want = outcome(rfc9112_6_3, special, version, method, status)
    assert outcome(response_framing, special, version, method, status) == want
    assert outcome(lambda: message_framing(special, version, request_method=method,
                                           status_code=status)) == want


def test_one_plain_content_length_is_the_length_rfc9112_6_3_5() -> None:
    assert request_framing({b"content-length": [b"42"]}, b"1.1") == (Framing.LENGTH, 42)
    assert response_framing({b"content-length": [b"0"]}, b"1.0", b"GET", 200) == (
        Framing.LENGTH, 0)


def test_chunked_alone_in_http11_is_chunked_rfc9112_6_3_4() -> None:
    special = {b"transfer-encoding": [b"chunked"]}
    assert response_framing(special, b"1.1", b"GET", 200) == (Framing.CHUNKED, 0)
    with pytest.raises(ConflictingFraming):
        response_framing(special, b"1.0", b"GET", 200)


# --- what we send -----------------------------------------------------------------------------

NO_FIELDS: list[tuple[bytes, bytes, bytes]] = []
CHUNKED = [(b"transfer-encoding", b"Transfer-Encoding", b"chunked")]


def test_a_request_with_neither_has_no_content_rfc9112_6_3_6() -> None:
    assert framing_to_send([], NO_FIELDS, None, b"GET", b"1.1") == (Framing.NO_BODY, b"")
    assert framing_to_send([b"3"], NO_FIELDS, None, b"POST", b"1.0") == (Framing.LENGTH, b"")


def test_chunked_is_asked_for_and_written_by_the_writer_rfc9112_6_1() -> None:
    assert framing_to_send([], CHUNKED, None, b"POST", b"1.1") == (
        Framing.CHUNKED, b"Transfer-Encoding: chunked")


def test_content_length_is_never_sent_with_transfer_encoding_rfc9112_6_2() -> None:
    with pytest.raises(FramingMismatch, match="both"):
        framing_to_send([b"3"], CHUNKED, None, b"POST", b"1.1")
    with pytest.raises(FramingMismatch, match="both"):
        framing_to_send([b"3"], CHUNKED, 200, b"GET", b"1.1")


def test_only_chunked_can_be_sent_rfc9112_6_1() -> None:
    with pytest.raises(FramingMismatch, match="Transfer-Encoding"):
        framing_to_send([], [(b"transfer-encoding", b"TE", b"gzip")], None, b"POST", b"1.1")


def test_an_http10_request_cannot_be_chunked_rfc9112_6_1() -> None:
    with pytest.raises(FramingMismatch, match=r"HTTP/1\.0"):
        framing_to_send([], CHUNKED, None, b"POST", b"1.0")


def test_a_response_to_http10_without_length_runs_to_close_rfc9112_6_3_7() -> None:
    assert framing_to_send([], NO_FIELDS, 200, b"GET", b"1.0") == (Framing.UNTIL_CLOSE, b"")
    assert framing_to_send([], CHUNKED, 200, b"GET", b"1.0") == (Framing.UNTIL_CLOSE, b"")
    assert framing_to_send([], NO_FIELDS, 200, b"GET", b"1.1") == (
        Framing.CHUNKED, b"Transfer-Encoding: chunked")


def test_a_2xx_to_connect_has_no_framing_fields_rfc9110_9_3_6() -> None:
    assert framing_to_send([], NO_FIELDS, 200, b"CONNECT", b"1.1") == (Framing.TUNNEL, b"")
    with pytest.raises(FramingMismatch, match="CONNECT"):
        framing_to_send([b"0"], NO_FIELDS, 200, b"CONNECT", b"1.1")
    assert framing_to_send([b"0"], NO_FIELDS, 407, b"CONNECT", b"1.1") == (Framing.LENGTH, b"")


@pytest.mark.parametrize(("status", "method"), [(204, b"GET"), (304, b"GET"), (200, b"HEAD")])
def test_responses_that_never_have_content_rfc9110_6_4_1(status: int, method: bytes) -> None:
    assert framing_to_send([], CHUNKED, status, method, b"1.1") == (Framing.NO_BODY, b"")


def test_a_204_carries_no_content_length_rfc9110_8_6() -> None:
    with pytest.raises(FramingMismatch, match="204"):
        framing_to_send([b"0"], NO_FIELDS, 204, b"GET", b"1.1")
    assert framing_to_send([b"0"], NO_FIELDS, 304, b"GET", b"1.1") == (Framing.NO_BODY, b"")


def test_the_length_sent_is_the_one_the_values_agree_on_rfc9112_6_3_5() -> None:
    assert length_to_send(7, [b"7"]) == 7
    assert length_to_send(None, [b"7, 7", b"7"]) == 7
    for values in ([b"7, 8"], [b"x"], [b""]):
        with pytest.raises(FramingMismatch, match="Content-Length"):
            length_to_send(None, values)
