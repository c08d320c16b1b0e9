"""Each script gets the part of ``_common.lua`` it uses, not all of it.

Redis runs a script's whole text on every call, so every ``local function``
of the shared helpers becomes a new closure per call: with 30 helpers that
was 2.3 µs of Redis time per call (4.1 µs for a script doing nothing, against
1.7 with none), about 7% of a single enqueue. The helpers are cut into blocks
at each top-level ``local`` and a script keeps the blocks its code names,
directly or through the blocks it keeps, in their original order (a Lua local
is seen only by the code after it, so the order that worked for all works for
a part). Names are matched as whole identifiers in the code with its ``--``
comments left out (a comment outside a string, to the end of its line: the
scripts have no block comments, which ``prelude_for`` refuses); a name in a
string keeps a block it did not need, never the other way round.
tests/redis/test_prelude.py checks that every helper a shipped script calls
is in it.
"""

from __future__ import annotations

import re

_BLOCK_START = re.compile(r"^local (?:function )?([A-Za-z_]\w*)", re.MULTILINE)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


def _code(text: str) -> str:
    """``text`` without its line comments: from a ``--`` outside quotes to the end of the line."""
    if "--[[" in text or "--[=" in text:
        raise ValueError("block comments are not supported in the scripts (see _prelude.py)")
    lines = []
    for line in text.splitlines():
        quote = ""
        for index, char in enumerate(line):
            if quote:
                if char == quote and line[index - 1] != "\\":
                    quote = ""
            elif char in "'\"":
                quote = char
            elif line.startswith("--", index):
                line = line[:index]
                break
        lines.append(line)
    return "\n".join(lines)


def prelude_for(common: str, body: str) -> str:
    """The helpers of ``common`` that ``body`` needs, with ``common``'s opening comment."""
    starts = list(_BLOCK_START.finditer(common))
    if not starts:
        return common
    header = common[: starts[0].start()]
    blocks: list[tuple[str, str]] = []
    for index, start in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(common)
        blocks.append((start.group(1), common[start.start() : end]))
    defined = {name for name, _ in blocks}
    if len(defined) != len(blocks):
        raise ValueError("a helper name is defined twice in _common.lua")
    names_in = {name: defined & set(_IDENTIFIER.findall(_code(text))) for name, text in blocks}
    wanted = defined & set(_IDENTIFIER.findall(_code(body)))
    # Until nothing is added (code names only blocks above it, so one pass
    # upwards would do; the loop does not depend on it).
    grown = True
    while grown:
        before = len(wanted)
        for name in list(wanted):
            wanted |= names_in[name]
        grown = len(wanted) != before
    return header + "".join(text for name, text in blocks if name in wanted)
