"""What every exchange of a proxy shares: its config, upstream groups and routes, hooks and
the upstream pool (:class:`Router`). :class:`~onehop.proxy.proxy.Proxy` adds listening
and shutdown on top; the exchanges depend only on this, so imports run one way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from onehop.client.pool import Pool
from onehop.core import Request, Response
from onehop.proxy.config import ProxyConfig, Route
from onehop.proxy.upstreams import UpstreamGroup

RequestHook = Callable[[Request, Request], "Request | Awaitable[Request | None] | None"]
ResponseHook = Callable[[Response, Response], "Response | Awaitable[Response | None] | None"]


class Router:
    """A proxy's routes, upstream groups, hooks and pool (see :class:`~onehop.proxy.Proxy`
    for the arguments)."""

    def __init__(
        self,
        config: ProxyConfig | None = None,
        *,
        upstreams: Sequence[str] | None = None,
        request_hook: RequestHook | None = None,
        response_hook: ResponseHook | None = None,
        access_log: bool = True,
    ) -> None:
        cfg = config or ProxyConfig()
        if upstreams:
            cfg.upstreams = {**cfg.upstreams, "default": list(upstreams)}
        cfg.validate()
        self.config = cfg
        self.groups = {name: UpstreamGroup(urls) for name, urls in cfg.upstreams.items()}
        self.routes = sorted(cfg.routes, key=lambda r: (r.host is None, -len(r.path)))
        default = "default" if "default" in self.groups else next(iter(self.groups), None)
        if default is not None and not any(r.host is None and r.path == "/" for r in self.routes):
            self.routes.append(Route("/", default))
        #: The one group every request goes to, when the only route is the catch-all:
        #: routing then costs nothing per request.
        self.catch_all: UpstreamGroup | None = None
        if len(self.routes) == 1 and self.routes[0].host is None and self.routes[0].path == "/":
            self.catch_all = self.groups[self.routes[0].group]
        self.request_hook = request_hook
        self.response_hook = response_hook
        self.log_access = access_log
        self.pool = Pool(
            max_connections=cfg.limits.max_connections,
            max_per_origin=cfg.limits.max_per_upstream,
            idle_timeout=cfg.timeouts.upstream_idle,
            ssl_context=cfg.upstream_ssl_context(),  # (https upstreams: verification on)
        )
        #: Requests answered (for tests and the demo).
        self.requests = 0

    # --- routing ------------------------------------------------------------------------------

    def route(self, host: bytes | None, path: bytes) -> UpstreamGroup | None:
        """The upstream group for a request: host (without port) and longest path prefix."""
        if self.catch_all is not None:
            return self.catch_all
        hname = None
        if host is not None:
            text = host.decode("latin-1").lower()
            hname = text.rsplit(":", 1)[0] if not text.endswith("]") else text
        p = path.decode("latin-1")
        for r in self.routes:
            if r.host is not None and r.host != hname:
                continue
            if p.startswith(r.path):
                return self.groups[r.group]
        return None
