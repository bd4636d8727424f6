"""onehop: HTTP/1.x connection management done right, for servers, clients and proxies."""

from onehop._version import __version__

__all__ = ["__version__"]
