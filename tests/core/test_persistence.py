"""The persistence decision of RFC 9112 §9.3, with HTTP/1.0 keep-alive (RFC 7230 §A.1.2)."""

from __future__ import annotations

from onehop.core import persists_after


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
