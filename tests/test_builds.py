"""The compiled (mypyc) and the pure build behave alike: what differed once is pinned here.

CI runs the whole suite in both builds (``.ci/run``) and tells each run which build it
must be (``ONEHOP_EXPECT_BUILD``), so a compiled build that silently came out pure,
or the reverse, fails here. The other tests pin the six differences the first
compiled build showed only at run time: event equality and repr (a compiled class
hides ``__slots__``), the per-class ``status_hint`` defaults (``onehop.errors`` must
stay interpreted), pickling for ``--workers``, and the trusted constructors (a
compiled class refuses ``object.__new__``; the interpreted fast path must build the
same instance as the constructor).
"""

from __future__ import annotations

import enum
import importlib
import importlib.machinery
import importlib.util
import os
import pickle
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import onehop
from onehop import _compiled, errors
from onehop.core import (
    DEFAULT_LIMITS,
    Connection,
    ConnectionInfo,
    Data,
    EndOfMessage,
    Headers,
    InformationalResponse,
    Limits,
    Request,
    Response,
    Role,
    events,
    headers,
)

EXPECTED = os.environ.get("ONEHOP_EXPECT_BUILD", "")


def _is_extension(name: str) -> bool:
    module = importlib.import_module(name)
    return isinstance(module.__loader__, importlib.machinery.ExtensionFileLoader) and (
        module.__file__ is not None
        and module.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)))


# --- which build ----------------------------------------------------------------------------


def test_the_hot_modules_are_all_compiled_or_all_pure() -> None:
    kinds = {name: _is_extension(name) for name in _compiled.COMPILED_MODULES}
    assert len(set(kinds.values())) == 1, kinds
    assert kinds == _compiled.module_kinds()
    assert onehop.compiled is all(kinds.values())


@pytest.mark.skipif(EXPECTED != "compiled", reason="CI's compiled run sets ONEHOP_EXPECT_BUILD")
def test_compiled_run_imports_extension_modules() -> None:
    for name in _compiled.COMPILED_MODULES:
        assert _is_extension(name), f"{name} is not an extension module"
    assert onehop.compiled is True
    assert _compiled.build_mode == "compiled"
    out = subprocess.run([sys.executable, "-m", "onehop", "--version"], capture_output=True,
                         text=True, check=True).stdout
    assert f"(compiled: mypyc, {len(_compiled.COMPILED_MODULES)} modules)" in out


@pytest.mark.skipif(EXPECTED != "pure", reason="CI's pure run sets ONEHOP_EXPECT_BUILD")
def test_pure_run_imports_source_modules() -> None:
    for name in _compiled.COMPILED_MODULES:
        assert not _is_extension(name), f"{name} is an extension module"
    assert onehop.compiled is False
    assert _compiled.build_mode in ("pure", "source")


def test_the_build_backend_asks_for_mypy_only_when_compiling(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The default install must download nothing extra (README: the first command).
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("_onehop_backend", root / "_build" /
                                                  "backend.py")
    if spec is None or spec.loader is None or not (root / "setup.py").is_file():
        pytest.skip("not run from a source tree")
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    for value, compiling in (("", False), ("0", False), ("1", True), ("yes", True)):
        monkeypatch.setenv("ONEHOP_COMPILE", value)
        assert backend.compile_requested() is compiling
        assert (backend.MYPY_PIN in backend._extra()) is compiling
    assert backend.MYPY_PIN.startswith("mypy==")


def _compiled_bases(cls: type) -> list[type]:
    """The classes of *cls*'s MRO that a compiled build makes native: defined in a compiled
    module, and neither an Enum, an exception nor a Protocol (those stay Python classes)."""
    return [
        base for base in cls.__mro__[1:]
        if base.__module__ in _compiled.COMPILED_MODULES
        and not issubclass(base, (enum.Enum, BaseException))
        and not getattr(base, "_is_protocol", False)
    ]


def test_no_interpreted_class_subclasses_a_compiled_one() -> None:
    # A compiled build refuses it at import ("interpreted classes cannot inherit from
    # compiled"): checked in the pure run too, so it fails before anyone builds. Fix by
    # adding the subclass's module to COMPILED_MODULES, or by not subclassing.
    offenders = []
    for info in pkgutil.walk_packages(onehop.__path__, "onehop."):
        if info.name in _compiled.COMPILED_MODULES or info.name == "onehop.__main__":
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # (an optional dependency that is not installed)
            continue
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == info.name and (
                    bases := _compiled_bases(value)):
                offenders.append(f"{info.name}.{value.__name__} < {bases[0].__qualname__}")
    assert not offenders


def test_errors_stay_interpreted_with_their_status_hints() -> None:
    # Compiled, the class-level defaults were lost and malformed requests got no 400.
    assert not _is_extension("onehop.errors")
    assert "onehop.errors" not in _compiled.COMPILED_MODULES
    hints = {
        errors.BadStartLine: 400, errors.UnsupportedVersion: 505, errors.URITooLong: 414,
        errors.HeaderTooLarge: 431, errors.UnsupportedTransferCoding: 501,
        errors.BodyTooLarge: 413, errors.LocalProtocolError: 500,
    }
    for cls, status in hints.items():
        assert cls("x").status_hint == status, cls
    assert errors.BadStartLine("x", status_hint=418).status_hint == 418


@pytest.mark.parametrize(("wire", "status"), [
    (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 9000 + b"\r\n\r\n", 431),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
])
def test_a_malformed_request_raises_with_its_status_rfc9112_2_2(wire: bytes, status: int) -> None:
    server = Connection(Role.SERVER)
    server.receive_data(wire)
    with pytest.raises(errors.RemoteProtocolError) as info:
        server.next_event()
    assert info.value.status_hint == status


# --- events: equality and repr from the explicit field list -----------------------------------


def test_events_differ_when_a_field_differs() -> None:
    assert Request(b"GET", b"/", [(b"Host", b"a")]) == Request("GET", "/", [("Host", "a")])
    assert Request(b"GET", b"/", [(b"Host", b"a")]) != Request(b"GET", b"/b", [(b"Host", b"a")])
    assert Request(b"GET", b"/", [(b"Host", b"a")]) != Request(b"PUT", b"/", [(b"Host", b"a")])
    assert Response(200) != Response(404)
    assert Response(200) != InformationalResponse(200)
    assert Data(b"a") != Data(b"b")
    assert Data(b"a") == Data(b"a")
    assert EndOfMessage() == EndOfMessage()
    assert EndOfMessage() != EndOfMessage([(b"X", b"1")])
    assert Data(b"a") != EndOfMessage()


def test_event_repr_names_every_field() -> None:
    assert repr(Data(b"a")) == "Data(data=b'a')"
    assert repr(Response(204)) == (
        "Response(connection=ConnectionInfo(options=[], fields=Headers([])), "
        "headers=Headers([]), http_version=b'1.1', reason=b'', status_code=204)")
    assert repr(Request(b"GET", b"/x", [(b"Host", b"a")])).startswith(
        "Request(connection=ConnectionInfo(options=[], fields=Headers([])), "
        "headers=Headers([(b'Host', b'a')]), http_version=b'1.1', method=b'GET', "
        "target=b'/x')")


# --- pickling (``--workers`` sends the config to each worker process) --------------------------


def test_limits_pickle_by_value() -> None:
    limits = Limits(max_head_size=1000, max_body_size=5)
    assert pickle.loads(pickle.dumps(limits)) == limits
    assert pickle.loads(pickle.dumps(DEFAULT_LIMITS)) == DEFAULT_LIMITS


def test_serving_config_pickles_for_workers() -> None:
    from onehop._aio.serving import ServingConfig

    config = ServingConfig(limits=Limits(max_fields=7), idle_timeout=3.0)
    copy = pickle.loads(pickle.dumps(config))
    assert (copy.limits, copy.idle_timeout) == (config.limits, 3.0)


def test_http2_settings_pickle_by_value() -> None:
    from onehop._aio.serving import Http2Settings, ServingConfig

    settings = Http2Settings(max_concurrent_streams=7, initial_window_size=1 << 20)
    assert pickle.loads(pickle.dumps(settings)) == settings
    config = ServingConfig(limits=Limits(), http2=settings)
    assert pickle.loads(pickle.dumps(config)).http2 == settings


def test_a_connect_error_keeps_its_cause_for_the_exit_status() -> None:
    """The CLI's exit status (60: certificate not verified) reads the cause, which a
    compiled ``raise ... from`` drops: the dialer sets it by hand."""
    import asyncio

    from onehop.client import ConnectError
    from onehop.client.connection import HTTPConnection
    from onehop.client.dialing import dial

    async def refused() -> BaseException:
        conn = HTTPConnection(("http", "127.0.0.1", 1))
        try:
            await dial(conn, None, 5.0)
        except ConnectError as exc:
            return exc
        raise AssertionError("connected to port 1")

    error = asyncio.run(refused())
    assert isinstance(error.__cause__, ConnectionRefusedError)


def test_server_config_pickles_for_workers() -> None:
    from onehop.server import Config

    config = Config(app="tests.server.apps:hello", limits=Limits(max_fields=7))
    copy = pickle.loads(pickle.dumps(config))
    assert copy.limits == config.limits


# --- trusted constructors: the interpreted fast path builds what the constructor builds ---------

_PRIVATE = {
    Headers: ("fields", "_wire", "_joined"),
    ConnectionInfo: ("options", "fields", "_keep_alive", "_lines"),
}


def _state(obj: object) -> object:
    """Every attribute of a parsed event, recursively (private ones included)."""
    names = _PRIVATE.get(type(obj))
    if names is None and isinstance(obj, events.Event):
        names = obj.FIELDS
    if names is None:
        return obj
    return (type(obj), tuple((n, _state(getattr(obj, n))) for n in names))


def test_the_build_flag_agrees_with_the_build() -> None:
    from onehop.core import native

    assert native.INTERPRETED is (not onehop.compiled)


@pytest.mark.parametrize("wire", [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive, X-T\r\nX-T: 1\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3\r\nabc\r\n0\r\nT: 1\r\n\r\n",
])
def test_parsed_events_equal_constructor_built_ones(wire: bytes) -> None:
    server = Connection(Role.SERVER)
    server.receive_data(wire)
    got = []
    while True:
        event = server.next_event()
        if not isinstance(event, events.Event):
            break
        got.append(event)
    assert type(got[-1]) is EndOfMessage
    for event in got:
        if isinstance(event, Request):
            conn = event.connection
            built: events.Event = Request(
                event.method, event.target, Headers(parsed=event.headers.fields),
                conn if conn is headers.NO_CONNECTION_INFO else ConnectionInfo(
                    parsed=conn.options, parsed_fields=conn.fields.fields),
                event.http_version)
        elif isinstance(event, Data):
            built = Data(event.data)
        else:
            assert isinstance(event, EndOfMessage)
            trailers = event.trailers  # (the shared empty one when there are none)
            built = EndOfMessage(trailers if trailers is headers.EMPTY_HEADERS else Headers(
                parsed=trailers.fields))
        assert _state(event) == _state(built)


def test_from_parsed_equals_the_constructor() -> None:
    fields = [(b"host", b"Host", b"a")]
    assert _state(Headers.from_parsed(fields)) == _state(Headers(parsed=fields))
    assert _state(Headers._trusted(fields)) == _state(Headers(parsed=fields))
    options = frozenset({b"x"})
    assert _state(ConnectionInfo.from_parsed(options, fields)) == _state(
        ConnectionInfo(parsed=options, parsed_fields=fields))
    assert _state(ConnectionInfo._trusted(options, fields)) == _state(
        ConnectionInfo(parsed=options, parsed_fields=fields))


def test_response_parsed_equals_constructor_built() -> None:
    client = Connection(Role.CLIENT)
    client.send(Request(b"GET", b"/", [(b"Host", b"a")]))
    client.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")
    event = client.next_event()
    assert isinstance(event, Response)
    conn = event.connection
    built = Response(200, Headers(parsed=event.headers.fields), b"OK",
                     ConnectionInfo(parsed=conn.options, parsed_fields=conn.fields.fields),
                     b"1.1")
    assert _state(event) == _state(built)
