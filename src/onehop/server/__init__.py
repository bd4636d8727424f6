"""The ASGI origin server: ``onehop serve``, :func:`serve`, :class:`Server` and :class:`Config`."""

from onehop.server.config import Config
from onehop.server.run import serve
from onehop.server.server import Server

__all__ = ["Config", "Server", "serve"]
