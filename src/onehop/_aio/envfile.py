"""``--env-file``: read ``KEY=VALUE`` lines into the environment before the app loads.

uvicorn hands the file to python-dotenv; this reads the same common syntax without
the dependency: blank lines and ``#`` comments, an optional ``export`` prefix,
unquoted values (a `` #`` starts a comment), single quotes (literal), double quotes
(``\\n``, ``\\t``, ``\\"`` and ``\\\\`` escapes, may span lines), and ``${NAME}``
expansion in unquoted and double-quoted values (from earlier lines, then the
environment). As with python-dotenv's default, a variable already set in the
environment is not overridden. Workers are spawned after this, so they inherit it.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from typing import Final

_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_EXPAND: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


class EnvFileError(ValueError):
    """The file cannot be read or a line cannot be parsed (the message names the line)."""


def parse(text: str, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """The variables *text* defines, in order (``${NAME}`` resolved against earlier
    lines, then *environ*).

    Raises:
        EnvFileError: a line that is neither blank, a comment nor ``KEY=VALUE``.
    """
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}

    def expand(value: str) -> str:
        def one(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            found = out.get(name, env.get(name))
            return found if found else (default or "")
        return _EXPAND.sub(one, value)

    lines = text.splitlines()
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            raise EnvFileError(f"line {number}: expected KEY=VALUE, got {lines[i - 1]!r}")
        rest = rest.lstrip()
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            body = rest[1:]
            while not _closed(body, quote):
                if i >= len(lines):
                    raise EnvFileError(f"line {number}: unterminated {quote} quote")
                body += "\n" + lines[i]
                i += 1
            value = body[: _closing(body, quote)]
            if quote == '"':
                value = expand(_unescape(value))
        else:
            value = re.split(r"\s#", rest, maxsplit=1)[0].rstrip()
            value = expand(value)
        out[key] = value
    return out


def _closing(body: str, quote: str) -> int:
    j = 0
    while j < len(body):
        c = body[j]
        if c == "\\" and quote == '"':
            j += 2
            continue
        if c == quote:
            return j
        j += 1
    return -1


def _closed(body: str, quote: str) -> bool:
    return _closing(body, quote) >= 0


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), value)


def load(path: str, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Read *path* and set each variable it defines that *environ* (default
    ``os.environ``) lacks; return what the file defines.

    Raises:
        EnvFileError: the file cannot be read, or a line cannot be parsed.
    """
    env = os.environ if environ is None else environ
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise EnvFileError(f"cannot read env file {path!r}: {exc.strerror or exc}") from None
    try:
        values = parse(text, env)
    except EnvFileError as exc:
        raise EnvFileError(f"{path}: {exc}") from None
    for key, value in values.items():
        env.setdefault(key, value)
    return values
