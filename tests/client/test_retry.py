"""is_retry_safe: RFC 9112 §9.3.1 and RFC 9110 §9.2.2, decided without I/O."""

from __future__ import annotations

import pytest

from onehop.client import is_retry_safe


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", b"GET"])
def test_idempotent_methods_are_retried_on_a_reused_connection_rfc9110_9_2_2(
    method: str | bytes,
) -> None:
    assert is_retry_safe(method, [], reused=True, bytes_received=0, body_replayable=True)


@pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT", "get"])
def test_non_idempotent_method_is_not_retried_automatically_rfc9112_9_3_1(method: str) -> None:
    assert not is_retry_safe(method, [], reused=True, bytes_received=0, body_replayable=True)


def test_idempotency_key_counts_as_consent_to_retry_post_rfc9112_9_3_1() -> None:
    headers = [("Idempotency-Key", "8e03978e")]
    assert is_retry_safe("POST", headers, reused=True, bytes_received=0, body_replayable=True)
    assert is_retry_safe(b"PATCH", [(b"idempotency-key", b"1")], True, 0, True)


def test_fresh_connection_failure_is_not_the_keep_alive_race_rfc9112_9_3_1() -> None:
    assert not is_retry_safe("GET", [], reused=False, bytes_received=0, body_replayable=True)


def test_no_retry_once_any_response_byte_arrived_rfc9112_9_3_1() -> None:
    assert not is_retry_safe("GET", [], reused=True, bytes_received=1, body_replayable=True)


def test_no_retry_when_the_body_cannot_be_replayed_rfc9112_9_3_1() -> None:
    assert not is_retry_safe("PUT", [], reused=True, bytes_received=0, body_replayable=False)
