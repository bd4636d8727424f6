"""``--forwarded-allow-ips`` verdicts: remembered per host, always the same as asked afresh."""

from __future__ import annotations

from onehop.server.proxyheaders import TrustedHosts

ENTRIES = ["10.0.0.0/8", "127.0.0.1", "::1", "/run/app.sock"]
HOSTS = ["10.1.2.3", "11.0.0.1", "127.0.0.1", "127.0.0.2", "::1", "::2", "/run/app.sock",
         "not-an-address", ""]


def test_a_remembered_verdict_is_the_verdict_of_a_fresh_list() -> None:
    trusted = TrustedHosts(ENTRIES)
    first = {host: host in trusted for host in HOSTS}
    again = {host: host in trusted for host in HOSTS}  # (from the memo)
    fresh = {host: host in TrustedHosts(ENTRIES) for host in HOSTS}
    assert first == again == fresh
    assert first == {"10.1.2.3": True, "11.0.0.1": False, "127.0.0.1": True,
                     "127.0.0.2": False, "::1": True, "::2": False, "/run/app.sock": True,
                     "not-an-address": False, "": False}


def test_the_memo_stays_bounded_and_right_past_its_size() -> None:
    trusted = TrustedHosts(["10.0.0.0/8"], memo_size=4)
    for i in range(50):
        assert (f"10.0.0.{i}" in trusted) is True
        assert (f"11.0.0.{i}" in trusted) is False
    assert len(trusted._memo) <= 4


def test_x_forwarded_for_client_is_the_first_untrusted_hop_from_the_right() -> None:
    trusted = TrustedHosts(["10.0.0.0/8"])
    assert trusted.client_of("203.0.113.7, 10.0.0.2, 10.0.0.3") == "203.0.113.7"
    assert trusted.client_of("198.51.100.1, 203.0.113.7, 10.0.0.3") == "203.0.113.7"
    assert trusted.client_of("10.0.0.9, 10.0.0.3") == "10.0.0.9"
    assert trusted.client_of(" , ") is None
