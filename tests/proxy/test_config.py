"""The proxy's TOML config: any mistake is a ConfigError naming the key, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onehop.proxy.config import ConfigError, from_dict

SECTIONS = ["listen", "upstreams", "routes", "timeouts", "limits", "headers", "forward",
            "retry_non_idempotent_close"]

#: Any value TOML can hold (tables, arrays, strings, numbers, booleans), nested.
toml_values = st.recursive(
    st.none().map(lambda _: "x") | st.booleans() | st.integers(-5, 70000)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["a", "default", "read", "host", "path", "upstream",
                                       "nomination", "enabled", "allow", "主机"]),
                      inner, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize("section", ["upstreams", "timeouts", "limits", "headers", "forward"])
def test_a_section_that_is_not_a_table_names_the_key(section: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{section}: expected a table"):
        from_dict({"upstreams": {"a": ["http://127.0.0.1:1"]}, section: 5}
                  if section != "upstreams" else {section: 5})


def test_nomination_that_is_not_a_table_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^headers\.nomination: expected a table"):
        from_dict({"upstreams": {"a": ["http://h:1"]}, "headers": {"nomination": "strip"}})


def test_non_latin1_field_in_nomination_is_not_protected() -> None:
    with pytest.raises(ConfigError, match=r"headers\.nomination\.主机: not a protected field"):
        from_dict({"upstreams": {"a": ["http://h:1"]}, "headers": {"nomination": {"主机": "x"}}})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(SECTIONS), toml_values, max_size=4))
def test_any_toml_shape_gives_a_config_or_a_config_error(data: dict[str, Any]) -> None:
    try:
        from_dict(data)
    except ConfigError as exc:
        assert str(exc)  # names what is wrong


def test_cli_reports_a_bad_section_and_exits_2(tmp_path: Path) -> None:
    conf = tmp_path / "p.toml"
    conf.write_text("timeouts = 5\n")
    done = subprocess.run([sys.executable, "-m", "onehop", "proxy", "--config", str(conf),
                           "--check"], capture_output=True, text=True, timeout=20)
    assert done.returncode == 2
    assert "timeouts: expected a table" in done.stderr and "Traceback" not in done.stderr
