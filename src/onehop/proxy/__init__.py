"""The intermediary role: reverse and forward proxy that strips hop-by-hop fields both ways.

``Proxy`` (``onehop.proxy.reverse``) takes inbound connections on the core and
sends upstream through ``onehop.client.Pool``; ``hop`` decides what crosses a
hop; ``forward`` holds the allow-list; ``tunnel`` copies bytes after an upgrade
or CONNECT; ``config`` loads TOML.
"""

from onehop.proxy.config import ConfigError, ProxyConfig, Route, Timeouts
from onehop.proxy.forward import ForwardPolicy
from onehop.proxy.hop import ForwardedStyle, HeaderPolicy, Nomination, Underscores
from onehop.proxy.proxy import Proxy

__all__ = [
    "ConfigError",
    "ForwardPolicy",
    "ForwardedStyle",
    "HeaderPolicy",
    "Nomination",
    "Proxy",
    "ProxyConfig",
    "Route",
    "Timeouts",
    "Underscores",
]
