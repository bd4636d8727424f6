"""Logging for the processes ``onehop serve`` and ``onehop proxy`` run: named loggers,
uvicorn's levels (TRACE too), ``--log-config`` and colours.

The command line configures only onehop's own loggers, never the root logger: an
application that configures logging itself (Django does, from its settings) keeps
its handlers, and its records are printed once, by them, instead of once more by a
root handler of ours (issue 13: Django's lines appeared twice after
``logging.basicConfig``). The loggers, as uvicorn's ``LOGGING_CONFIG`` has them:

* ``onehop`` (stderr; ``onehop.error``, ``onehop.server``, ``onehop.proxy`` and the
  rest propagate to it): lifecycle lines, rejected requests ("peer: 408 cause"),
  failures;
* ``onehop.access`` (stdout): one line per request the server answered;
* ``onehop.proxy.access`` (stdout): one line per proxied exchange.

The proxy's default format carries a timestamp, the server's follows uvicorn's.
Configuration happens in each process (a spawned worker repeats it): a
:class:`LogSettings` is plain data, picklable.
"""

from __future__ import annotations

import copy
import http
import json
import logging
import logging.config
import os
import sys
from dataclasses import dataclass
from typing import Any, Final, Literal

#: uvicorn's TRACE level: below DEBUG, per-connection events.
TRACE: Final = 5
logging.addLevelName(TRACE, "TRACE")

#: ``--log-level`` names and their levels.
LOG_LEVELS: Final = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}

#: Logger of lifecycle lines and rejected requests (the endpoint's too).
error_log: Final = logging.getLogger("onehop.error")

_COLOURS: Final = {
    TRACE: "34", logging.DEBUG: "36", logging.INFO: "32", logging.WARNING: "33",
    logging.ERROR: "31", logging.CRITICAL: "91",
}
_STATUS_COLOURS: Final = {1: "97", 2: "32", 3: "33", 4: "31", 5: "91"}


def _ansi(text: str, code: str, bold: bool = False) -> str:
    return f"\x1b[{'1;' if bold else ''}{code}m{text}\x1b[0m"


class DefaultFormatter(logging.Formatter):
    """Adds ``%(levelprefix)s`` ("INFO:     ", coloured when *use_colors*), as uvicorn's
    formatter does, so a uvicorn-style format string works unchanged.

    *use_colors* None means: colour when the stream the records go to is a terminal
    (stderr here, stdout for :class:`AccessFormatter`).
    """

    stream_name = "stderr"

    def __init__(self, fmt: str | None = None, datefmt: str | None = None,
                 style: Literal["%", "{", "$"] = "%", use_colors: bool | None = None) -> None:
        if use_colors is None:
            stream = getattr(sys, self.stream_name, None)
            use_colors = bool(stream is not None and stream.isatty())
        self.use_colors = use_colors
        super().__init__(fmt=fmt, datefmt=datefmt, style=style)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record = copy.copy(record)
        name = record.levelname
        pad = " " * max(0, 8 - len(name))
        if self.use_colors:
            name = _ansi(name, _COLOURS.get(record.levelno, "0"))
        record.__dict__["levelprefix"] = f"{name}:{pad}"
        return super().formatMessage(record)


class AccessFormatter(DefaultFormatter):
    """Also adds uvicorn's access fields (``client_addr``, ``request_line``,
    ``status_code`` with its phrase, coloured) when the record's arguments are the
    server's ``(client, method, target, version, status)``, so uvicorn's access format
    works; another record gets ``-``, its message and an empty status instead."""

    stream_name = "stdout"

    def formatMessage(self, record: logging.LogRecord) -> str:
        record = copy.copy(record)
        record.__dict__.setdefault("client_addr", "-")
        record.__dict__.setdefault("request_line", record.__dict__.get("message", ""))
        record.__dict__.setdefault("status_code", "")
        args = record.args
        if isinstance(args, tuple) and len(args) >= 5 and isinstance(args[4], int):
            client, method, target, version = args[:4]
            status: int = args[4]
            try:
                phrase = http.HTTPStatus(status).phrase
            except ValueError:
                phrase = ""
            status_text = f"{status} {phrase}".rstrip()
            line = f"{method} {target} HTTP/{version}"
            if self.use_colors:
                status_text = _ansi(status_text, _STATUS_COLOURS.get(status // 100, "0"))
                line = _ansi(line, "0", bold=True)
            record.__dict__.update(client_addr=client, request_line=line,
                                   status_code=status_text)
        return super().formatMessage(record)


#: Default formats: the server's are uvicorn's; the proxy's carry a timestamp (its access
#: lines have more fields than a request line and a status: they keep their message).
SERVER_FORMAT: Final = "%(levelprefix)s %(message)s"
SERVER_ACCESS_FORMAT: Final = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'
PROXY_FORMAT: Final = "%(asctime)s %(levelprefix)s %(message)s"


def default_config(role: Literal["server", "proxy"] = "server",
                   use_colors: bool | None = None) -> dict[str, Any]:
    """The ``dictConfig`` the command line applies when no ``--log-config`` is given:
    handlers on onehop's loggers only (``propagate: False``), the root untouched."""
    fmt = PROXY_FORMAT if role == "proxy" else SERVER_FORMAT
    formatter = {"()": f"{__name__}.DefaultFormatter", "fmt": fmt, "use_colors": use_colors}
    access = {"()": f"{__name__}.AccessFormatter", "use_colors": use_colors,
              "fmt": PROXY_FORMAT if role == "proxy" else SERVER_ACCESS_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter, "access": access},
        "handlers": {
            "default": {"formatter": "default", "class": "logging.StreamHandler",
                        "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler",
                       "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "onehop": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "onehop.error": {"level": "INFO"},
            "onehop.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
            "onehop.proxy.access": {"handlers": ["access"], "level": "INFO",
                                    "propagate": False},
        },
    }


class LogConfigError(ValueError):
    """``--log-config`` cannot be read or applied; the message names the file and why."""


@dataclass(frozen=True)
class LogSettings:
    """How a process configures logging (plain data: a spawned worker gets a copy).

    Attributes:
        config: a ``dictConfig`` dict, or a file: ``.json`` or ``.yaml``/``.yml``
            (``dictConfig``, YAML needs PyYAML), anything else ``fileConfig`` (INI);
            None: :func:`default_config`.
        level: a :data:`LOG_LEVELS` name (or a number) set on onehop's loggers after the
            config; None leaves the config's levels.
        use_colors: colour the level names (None: when the stream is a terminal).
        access_log: False removes the access loggers' handlers.
        role: ``server`` or ``proxy``: which default format.
    """

    config: str | dict[str, Any] | None = None
    level: str | int | None = None
    use_colors: bool | None = None
    access_log: bool = True
    role: Literal["server", "proxy"] = "server"


def level_number(level: str | int) -> int:
    """The number of a ``--log-level`` name (or the number itself).

    Raises:
        ValueError: an unknown name.
    """
    if isinstance(level, int):
        return level
    try:
        return LOG_LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {level!r}; choose from "
                         f"{', '.join(LOG_LEVELS)}") from None


def configure(settings: LogSettings) -> None:
    """Apply *settings* to this process's logging (see the module docstring).

    Raises:
        LogConfigError: the config file is missing, malformed, YAML without PyYAML,
            or ``logging.config`` refuses it.
    """
    config = settings.config
    try:
        if config is None:
            logging.config.dictConfig(default_config(settings.role, settings.use_colors))
        elif isinstance(config, dict):
            logging.config.dictConfig(config)
        elif config.endswith(".json"):
            with open(config) as f:
                logging.config.dictConfig(json.load(f))
        elif config.endswith((".yaml", ".yml")):
            try:
                import yaml  # type: ignore[import-untyped]
            except ImportError:
                raise LogConfigError(f"{config}: YAML log configs need PyYAML: "
                                     "pip install pyyaml") from None
            with open(config) as f:
                logging.config.dictConfig(yaml.safe_load(f))
        else:
            if not os.path.exists(config):  # (fileConfig's own error is a KeyError)
                raise FileNotFoundError(f"no such file: {config!r}")
            logging.config.fileConfig(config, disable_existing_loggers=False)
    except LogConfigError:
        raise
    except (OSError, ValueError, TypeError, KeyError, AttributeError, ImportError) as exc:
        raise LogConfigError(f"cannot apply log config {config!r}: {exc}") from None
    if settings.level is not None:
        level = level_number(settings.level)
        for name in ("onehop", "onehop.error", "onehop.access", "onehop.proxy.access"):
            logging.getLogger(name).setLevel(level)
    if not settings.access_log:
        for name in ("onehop.access", "onehop.proxy.access"):
            access = logging.getLogger(name)
            access.handlers = []
            access.propagate = False
