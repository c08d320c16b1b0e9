"""Each script carries only the shared helpers it uses (_prelude.py), and nothing it uses is cut."""

from __future__ import annotations

import re

import pytest

from jobqueue.redis._core import _SCRIPTS
from jobqueue.redis._prelude import prelude_for
from jobqueue.redis._schedules import _SCRIPTS as _SCHEDULE_SCRIPTS

COMMON = """-- opening comment
local function a()
  return 1
end
-- about b
local function b()
  return a()
end
local C = 3
local function d()
  return C
end
"""


def test_a_script_keeps_what_it_names_and_what_that_names() -> None:
    kept = prelude_for(COMMON, "return b()")
    assert "local function a()" in kept
    assert "local function b()" in kept
    assert "local C" not in kept
    assert "local function d()" not in kept
    assert kept.startswith("-- opening comment\n")


def test_order_is_kept_and_constants_follow_their_users() -> None:
    kept = prelude_for(COMMON, "return d() + b()")
    assert kept == COMMON


def test_a_name_defined_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        prelude_for("local function a()\nend\nlocal a = 1\n", "a()")


def _locals_called_but_not_defined(source: str) -> set[str]:
    defined = set(re.findall(r"^local (?:function )?([A-Za-z_]\w*)", source, re.MULTILINE))
    defined |= set(re.findall(r"\blocal (?:function )?([A-Za-z_]\w*)", source))
    called = set(re.findall(r"(?<![.:\w])([a-z_]\w*)\(", source))
    lua = {
        "tonumber",
        "tostring",
        "unpack",
        "pairs",
        "ipairs",
        "type",
        "error",
        "pcall",
        "next",
        "select",
        "assert",
        "setmetatable",
        "getmetatable",
        "rawget",
        "rawset",
        "function",
    }
    return called - defined - lua


@pytest.mark.parametrize(
    "name",
    [f"store:{n}" for n in _SCRIPTS[False]] + [f"schedule:{n}" for n in _SCHEDULE_SCRIPTS],
)
def test_every_helper_a_shipped_script_calls_is_in_it(name: str) -> None:
    kind, script = name.split(":")
    source = _SCRIPTS[False][script] if kind == "store" else _SCHEDULE_SCRIPTS[script]
    assert _locals_called_but_not_defined(source) == set()


def test_comments_do_not_keep_a_helper_but_strings_and_code_after_them_do() -> None:
    assert prelude_for(COMMON, "-- d() would be nice\nreturn 0") == "-- opening comment\n"
    kept = prelude_for(COMMON, "local s = 'x -- y' .. d() -- and b()")
    assert "local function d()" in kept
    assert "local C" in kept
    assert "local function b()" not in kept


def test_block_comments_are_refused() -> None:
    with pytest.raises(ValueError, match="block comments"):
        prelude_for(COMMON, "--[[ d() ]] return 1")
