"""Where a redirect leads, and what the next request carries: one rule for the client
and ``onehop get -L`` (issue 15).

Pure functions: :func:`next_hop` reads a 3xx answer and the request that got it
and returns the request to send next, or None when the answer is final. The
client does the I/O, counts the hops and keeps the history.

- Followed: 301, 302, 303, 307 and 308 with a ``Location`` (RFC 9110 §15.4).
  300 and 304 are answers to keep, not to follow (§15.4.1, §15.4.5).
- The method, as browsers change it (Fetch standard, "HTTP-redirect fetch",
  step 12; RFC 9110 §15.4.2-§15.4.4 allow it): a POST answered 301 or 302 becomes
  a GET; any method but GET and HEAD answered 303 becomes a GET; otherwise the
  method and its body go again (always on 307 and 308, RFC 9110 §15.4.8,
  §15.4.9), so the body must be replayable.
  httpx also turns PUT and DELETE into GET on a 302; we follow the RFC and the
  browsers there, as curl does.
- A request turned into a GET loses its body and the fields describing it.
- Credentials go only where the user sent them: ``Authorization``, ``Cookie`` and
  ``Proxy-Authorization`` are dropped when the redirect leaves the origin (RFC
  9110 §15.4: the user agent must not leak them to another site), except for an
  upgrade from http to https on the same host and default ports (as httpx).
  A ``Host`` field the caller set is dropped too: the new URL names the host.
- The ``Location`` reference is resolved against the request's URL (RFC 9110
  §10.2.2, RFC 3986 §5); a fragment is never sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urldefrag, urljoin

#: Statuses whose ``Location`` the client follows (RFC 9110 §15.4).
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
#: Fields that describe a body: dropped with it (Fetch: "request-body-header names").
BODY_FIELDS: Final = frozenset({
    b"content-type", b"content-length", b"content-encoding", b"content-language",
    b"content-location", b"transfer-encoding", b"expect",
})
#: Fields that carry the user's credentials for one origin.
CREDENTIAL_FIELDS: Final = frozenset({b"authorization", b"cookie", b"proxy-authorization"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

Origin = tuple[str, str, int]
#: Splits a URL into its origin (the client's parser, so both agree on default ports).
OriginOf = Callable[[str], Origin]


@dataclass(frozen=True)
class Hop:
    """The request a redirect asks for.

    ``drop`` names fields (lower-case) not to send on it, whether the caller's or the
    client's defaults; ``keep_body`` says whether the body goes again (the method
    did not change: always on 307 and 308).
    """

    method: str
    url: str
    keep_body: bool
    drop: frozenset[bytes]


def redirect_method(status: int, method: str) -> str:
    """The method of the request that follows a *status* redirect of *method*.

    RFC 9110 §15.4.4 (303: "a user agent can perform a retrieval request"), and
    §15.4.2/§15.4.3's note that user agents may turn a POST into a GET after a
    301 or 302, as every browser does (Fetch standard, HTTP-redirect fetch).
    """
    if status == 303 and method not in ("GET", "HEAD"):
        return "GET"
    if status in (301, 302) and method == "POST":
        return "GET"
    return method


def is_credential_safe(old: Origin, new: Origin) -> bool:
    """Whether credentials for *old* may go to *new*: the same origin (RFC 6454), or
    the same host moving from http to https, both on their default ports."""
    if old == new:
        return True
    return (
        old[0] == "http" and new[0] == "https" and old[1] == new[1]
        and old[2] == _DEFAULT_PORTS["http"] and new[2] == _DEFAULT_PORTS["https"]
    )


def next_hop(
    status: int,
    location: str | None,
    *,
    method: str,
    url: str,
    origin: Origin,
    new_origin_of: OriginOf,
) -> Hop | None:
    """The request to send after a *status* answer to *method* *url*; None if final.

    *origin* is *url*'s; *new_origin_of* splits the next URL into its origin (the
    client's URL parser, so both agree on default ports and host case).

    Raises:
        InvalidURL: the ``Location`` does not give a URL the client can request.
    """
    if status not in REDIRECT_STATUSES or not location:
        return None
    target = urldefrag(urljoin(url, location.strip()))[0]
    new_method = redirect_method(status, method)
    keep_body = new_method == method
    drop: set[bytes] = set()
    if not keep_body:
        drop |= BODY_FIELDS
    new_origin = new_origin_of(target)
    if new_origin != origin:
        drop.add(b"host")
        if not is_credential_safe(origin, new_origin):
            drop |= CREDENTIAL_FIELDS
    return Hop(new_method, target, keep_body, frozenset(drop))
