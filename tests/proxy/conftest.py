"""Every proxy behaviour test runs with a cold pool and a warm one (an idle upstream
connection ready before the first request): warm or cold is only whether the pool lends
at once, so each behaviour must hold either way (``pool_state``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.proxy.helpers import ProxyThread


@pytest.fixture(params=["cold", "warm"])
def pool_state(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``"cold"`` or ``"warm"``: whether each ``ProxyThread`` starts with idle connections."""
    monkeypatch.setattr(ProxyThread, "warm", request.param == "warm")
    yield request.param
