"""The persistence decision of RFC 9112 §9.3, with HTTP/1.0 keep-alive (RFC 7230 §A.1.2),
for messages received (:func:`persists_after`) and sent (:func:`persists_after_sending`)."""

from __future__ import annotations

from onehop.core import Framing, persists_after
from onehop.core.persistence import persists_after_sending

NONE: frozenset[bytes] = frozenset()
CLOSE = frozenset({b"close"})


def test_close_option_means_no_persistence_rfc9112_9_3() -> None:
    assert not persists_after(b"1.1", frozenset({b"close"}), is_request=True)
    assert not persists_after(b"1.0", frozenset({b"close", b"keep-alive"}), is_request=True)


def test_http11_persists_by_default_rfc9112_9_3() -> None:
    assert persists_after(b"1.1", frozenset(), is_request=True)
    assert persists_after(b"1.1", frozenset(), is_request=False)


def test_http10_persists_only_with_keep_alive_rfc9112_9_3() -> None:
    assert not persists_after(b"1.0", frozenset(), is_request=True)
    assert persists_after(b"1.0", frozenset({b"keep-alive"}), is_request=True)


def test_proxy_does_not_persist_with_http10_client_rfc9112_9_3() -> None:
    ka = frozenset({b"keep-alive"})
    assert not persists_after(b"1.0", ka, is_request=True, intermediary=True)
    # "... either the recipient is not a proxy or the message is a response"
    assert persists_after(b"1.0", ka, is_request=False, intermediary=True)


def test_recipient_may_decline_http10_keep_alive_rfc9112_9_3() -> None:
    ka = frozenset({b"keep-alive"})
    assert not persists_after(b"1.0", ka, is_request=True, honor_http10_keep_alive=False)


def test_a_sender_of_close_closes_after_that_message_rfc9112_9_6() -> None:
    assert persists_after_sending(True, NONE, Framing.LENGTH)
    assert not persists_after_sending(True, CLOSE, Framing.LENGTH)


def test_nothing_persists_once_persistence_has_ended_rfc9112_9_6() -> None:
    assert not persists_after_sending(False, NONE, Framing.LENGTH)


def test_a_body_delimited_by_close_ends_the_connection_rfc9112_6_3_7() -> None:
    assert not persists_after_sending(True, NONE, Framing.UNTIL_CLOSE)
    assert persists_after_sending(True, NONE, Framing.CHUNKED)


def test_a_response_that_answers_no_request_closes() -> None:
    """A 408 or a 400 written before a request could be read: what follows on the
    connection cannot be trusted to start a request (RFC 9112 §9.5, §2.2)."""
    assert not persists_after_sending(True, NONE, Framing.LENGTH, unsolicited=True)
