"""How values look on a page: payloads, times, ages. Pure functions, tested directly."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_SHOWN_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Shown:
    """A payload or result as text, with how it was read ("json", "text", "hex", "empty")."""

    kind: str
    text: str
    truncated: bool = False


def show_bytes(data: bytes | None) -> Shown:
    """Pretty JSON when the bytes are JSON, text when UTF-8, a hex dump otherwise."""
    if not data:
        return Shown("empty", "")
    truncated = len(data) > MAX_SHOWN_BYTES
    head = data[:MAX_SHOWN_BYTES]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return Shown("hex", hex_dump(head), truncated)
    if not truncated:
        try:
            return Shown("json", json.dumps(json.loads(text), indent=2, ensure_ascii=False))
        except ValueError:
            pass
    if all(c.isprintable() or c in "\n\r\t" for c in text):
        return Shown("text", text, truncated)
    return Shown("hex", hex_dump(head), truncated)


def hex_dump(data: bytes, width: int = 16) -> str:
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset : offset + width]
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<{width * 3 - 1}}  {ascii_}")
    return "\n".join(lines)


def iso(ms: int) -> str:
    """A store time (ms since the epoch) in UTC, to the millisecond."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}Z"


def duration(ms: int) -> str:
    """A duration for people: 850 ms, 12.3 s, 4 min 5 s, 3 h 2 min, 2 d 4 h."""
    if ms < 0:
        return "-" + duration(-ms)
    if ms < 1_000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {second} s"
    hours, minute = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minute} min"
    days, hour = divmod(hours, 24)
    return f"{days} d {hour} h"


def parse_time(text: str) -> int | None:
    """A time filter from a form (ISO 8601, UTC when no zone is given) in ms; None when blank.

    Raises ValueError on anything else, which the page shows as a 400.
    """
    text = text.strip()
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
