"""Regenerate the reference docs: ``docs/api.md`` and ``docs/configuration.md``.

Run from anywhere: ``uv run python scripts/gen_docs.py`` (``--check`` only
reports whether the committed files are current, and exits 1 when they are not).

Each doc is a hand-written head followed by a generated body. Everything above
``GENERATED_MARKER`` is kept as it is; everything below is rewritten:

- ``docs/api.md`` from the ``.proto`` sources, compiled in-process by
  grpcio-tools' protoc with ``--include_source_info`` so every service, RPC,
  message, field and enum value keeps its comment. No buf, no network.
- ``docs/configuration.md`` from the settings classes themselves: the server's
  and the example worker's pydantic models (plus their click flags), the
  ``WorkerSettings`` and ``RedisStoreSettings`` dataclasses, the client
  SDK's constructor and CLI options, the dashboard's ``DashboardSettings``
  (and the ``JOBQUEUE_DASHBOARD_*`` variables its ``from_env`` reads), and the
  ``jobqueue-worker`` command's argparse options.

``tests/docs/test_docs_current.py`` fails when a committed doc differs from what
this script produces.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import re
import sys
import tempfile
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click
from google.protobuf import descriptor_pb2 as d
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PROTO_FILES = (
    "mpataki/jobqueue/v1/jobqueue.proto",
    "mpataki/jobqueue/v1/worker.proto",
    "mpataki/jobqueue/v1/admin.proto",
    "mpataki/jobqueue/v1/schedule.proto",
)
PROTO_PACKAGE = "mpataki.jobqueue.v1"
API_DOC = ROOT / "docs" / "api.md"
CONFIG_DOC = ROOT / "docs" / "configuration.md"
REGENERATE = "uv run python scripts/gen_docs.py"

GENERATED_MARKER = (
    f"<!-- Generated below this line by `{REGENERATE}`; edit the sources, not this text. -->"
)

# The seed's frozen contract (proto/README.md): the names and numbers of the
# first commit of jobqueue.proto (84320bd). `buf breaking` guards it in CI;
# here it only marks those parts in the reference. A message listed with no
# numbers was in the seed without fields (CancelJobResponse).
SEED_RPCS: Mapping[str, frozenset[str]] = {
    "JobService": frozenset({"EnqueueJob", "GetJob", "CancelJob"}),
}
SEED_FIELDS: Mapping[str, frozenset[int]] = {
    "EnqueueJobRequest": frozenset({1, 2, 3}),
    "EnqueueJobResponse": frozenset({1}),
    "GetJobRequest": frozenset({1}),
    "GetJobResponse": frozenset({1}),
    "CancelJobRequest": frozenset({1}),
    "CancelJobResponse": frozenset(),
    "Job": frozenset(range(1, 8)),
}
SEED_ENUM_VALUES: Mapping[str, frozenset[int]] = {"JobStatus": frozenset(range(5))}
SEED_MARK = "seed"

# Settings whose classes carry no description of their own (no pydantic
# `description`, no click help, no docstring Attributes entry). Keyed by
# section and field; a stale entry (a field that no longer exists) is an error,
# and so is a field with no description at all, so the doc cannot silently
# fall behind the code.
FALLBACK_DESCRIPTIONS: Mapping[str, Mapping[str, str]] = {
    "redis-store": {
        "url": (
            "Redis URL as redis-py reads it: `redis://` or `rediss://` (TLS), "
            "password and database in the URL."
        ),
        "key_prefix": (
            "Namespace of every key, as the Redis Cluster hash tag `{<key_prefix>}:`; "
            "1 to 64 characters from `[A-Za-z0-9_.:-]`."
        ),
        "retention_ms": (
            "How long finished jobs stay readable; positive. Kept in Redis and shared by "
            "every server and worker of the prefix: None follows what Redis holds "
            "(24 hours if nothing was set); set it on servers, not workers."
        ),
        "min_replicas": (
            "Durability on demand: add, settle and cancel are acknowledged only once this many "
            "replicas hold them (`WAIT`); 0: the primary alone."
        ),
        "replica_timeout_ms": (
            "How long a durable write waits for its replicas before failing as unavailable."
        ),
        "durable_connections": (
            "Connections that carry durable writes and their WAITs, apart from every other call."
        ),
        "connection": (
            "The hot path: `multiplexed` (one pipelined connection) or `redis-py` (its pooled "
            "client); measured side by side in docs/benchmarks.md."
        ),
        "shards": (
            "Virtual shards of the keyspace, by job type: 1 keeps every key under "
            "`{<key_prefix>}` (a single Redis or Sentinel); more spread types over a Redis "
            "Cluster's masters. None adopts the number Redis records for the prefix (1 when "
            "none); one that disagrees with the record fails with `ShardLayoutMismatch`."
        ),
        "cluster": (
            "Talk to a Redis Cluster through redis-py's RedisCluster (follows MOVED and ASK); "
            "implied by a `redis+cluster://host:port[,host:port...]` URL."
        ),
        "max_finished": (
            "Most finished jobs kept per type and status, oldest forgotten first; kept in "
            "Redis like `retention_ms`. None follows what Redis holds (100,000)."
        ),
        "socket_timeout_ms": (
            "How long a Redis command may wait for its reply, in ms "
            "(`socket_timeout_s`, in seconds, still works)."
        ),
        "connect_timeout_ms": (
            "Timeout of opening a connection to Redis, in ms "
            "(`connect_timeout_s`, in seconds, still works)."
        ),
        "max_connections": (
            "Size of each redis-py pool (listing, blocking waits, watches); "
            "scripts and reads share one pipelined connection."
        ),
    },
}


# DashboardSettings has no per-field docs of its own: one line per field, checked
# both ways against the dataclass (a missing or a stale entry is an error).
DASHBOARD_DESCRIPTIONS: Mapping[str, str] = {
    "enabled": (
        "`false` (or `0`, `no`): the server mounts no dashboard. The server also leaves it "
        "off when the API needs a token (`JOBQUEUE_AUTH_TOKEN`) and no dashboard token is set."
    ),
    "token": (
        "Admin token: log in, see everything, act. With neither token the dashboard is open "
        "to whoever reaches the port (the server logs a warning)."
    ),
    "readonly_token": (
        "Read-only token: sees everything, every action refused (403); must differ from the "
        "admin token."
    ),
    "secret": (
        "Signs the session cookie; unset draws a random one per process, so sessions end with "
        "a restart. Give servers behind one address the same one."
    ),
    "prefix": "Path prefix of the dashboard's routes: starts with `/`, no trailing `/`.",
    "sample_interval_ms": (
        "Interval of the overview's samples, and the bucket of the counter history every "
        "server writes into the store (10 s on a server whose dashboard is off); positive."
    ),
    "history_samples": (
        "Samples the overview's charts show: the window is this times `sample_interval_ms` "
        "(one hour by default); positive."
    ),
    "live_interval_ms": (
        "How often the overview and types pages re-render their live region (longer when a "
        "render is slow); positive."
    ),
    "page_size": "Jobs per listing page; positive.",
    "session_max_age_ms": "How long a login session lasts (whole seconds count); positive.",
}


# -- helpers ----------------------------------------------------------------------


def _cell(text: str) -> str:
    """One Markdown table cell: a single line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return lines


def _code(text: str) -> str:
    return f"`{text}`"


def _splice(path: Path, body: str, default_head: str) -> str:
    """The hand-written head of ``path`` (up to the marker), then the generated body."""
    head = default_head
    if path.exists():
        text = path.read_text(encoding="utf-8")
        index = text.find(GENERATED_MARKER)
        if index < 0:
            raise SystemExit(f"{path}: the line {GENERATED_MARKER!r} is missing")
        head = text[:index]
    return head + GENERATED_MARKER + "\n\n" + body.rstrip("\n") + "\n"


# -- docs/api.md ------------------------------------------------------------------

# Paths into FileDescriptorProto and friends (descriptor.proto's field numbers),
# as SourceCodeInfo.Location.path uses them.
_FILE_PACKAGE = 2
_FILE_MESSAGE = 4
_FILE_ENUM = 5
_FILE_SERVICE = 6
_MESSAGE_FIELD = 2
_SERVICE_METHOD = 2
_ENUM_VALUE = 2

_SCALARS: Mapping[int, str] = {
    d.FieldDescriptorProto.TYPE_DOUBLE: "double",
    d.FieldDescriptorProto.TYPE_FLOAT: "float",
    d.FieldDescriptorProto.TYPE_INT64: "int64",
    d.FieldDescriptorProto.TYPE_UINT64: "uint64",
    d.FieldDescriptorProto.TYPE_INT32: "int32",
    d.FieldDescriptorProto.TYPE_FIXED64: "fixed64",
    d.FieldDescriptorProto.TYPE_FIXED32: "fixed32",
    d.FieldDescriptorProto.TYPE_BOOL: "bool",
    d.FieldDescriptorProto.TYPE_STRING: "string",
    d.FieldDescriptorProto.TYPE_BYTES: "bytes",
    d.FieldDescriptorProto.TYPE_UINT32: "uint32",
    d.FieldDescriptorProto.TYPE_SFIXED32: "sfixed32",
    d.FieldDescriptorProto.TYPE_SFIXED64: "sfixed64",
    d.FieldDescriptorProto.TYPE_SINT32: "sint32",
    d.FieldDescriptorProto.TYPE_SINT64: "sint64",
}


def compile_protos() -> d.FileDescriptorSet:
    """The API's descriptors with their source comments, from grpcio-tools' protoc."""
    # A dev dependency only, without type stubs: imported where it is needed.
    from grpc_tools import protoc

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "api.binpb"
        args = [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *PROTO_FILES,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {', '.join(PROTO_FILES)}")
        return d.FileDescriptorSet.FromString(out.read_bytes())


class _Comments:
    """The comments of one file, by descriptor path."""

    def __init__(self, file: d.FileDescriptorProto) -> None:
        self._by_path: dict[tuple[int, ...], str] = {}
        for location in file.source_code_info.location:
            text = location.leading_comments or location.trailing_comments
            if text:
                self._by_path[tuple(location.path)] = text

    def paragraphs(self, *path: int) -> str:
        """The comment as Markdown: one leading space per line dropped, blank lines kept."""
        text = self._by_path.get(path, "")
        lines = [line[1:] if line.startswith(" ") else line for line in text.splitlines()]
        return "\n".join(lines).strip()

    def line(self, *path: int) -> str:
        return " ".join(self.paragraphs(*path).split())


def _short(type_name: str) -> str:
    return type_name.removeprefix(".").removeprefix(PROTO_PACKAGE + ".")


def _link(type_name: str) -> str:
    name = _short(type_name)
    return f"[`{name}`](#{name.lower()})"


def _field_type(
    field: d.FieldDescriptorProto, maps: Mapping[str, d.DescriptorProto] | None = None
) -> str:
    entry = (maps or {}).get(_short(field.type_name)) if field.type_name else None
    if entry is not None:
        # A map field is a repeated message of a synthetic *Entry type: show
        # it the way the .proto spells it.
        key, value = entry.field
        return f"map<{_field_type(key)}, {_field_type(value)}>"
    if field.type in (
        d.FieldDescriptorProto.TYPE_MESSAGE,
        d.FieldDescriptorProto.TYPE_ENUM,
    ):
        base = _link(field.type_name)
    else:
        base = _code(_SCALARS[field.type])
    if field.label == d.FieldDescriptorProto.LABEL_REPEATED:
        return f"repeated {base}"
    if field.proto3_optional:
        return f"optional {base}"
    return base


def render_api(files: d.FileDescriptorSet) -> str:
    """The generated body of ``docs/api.md``."""
    out: list[str] = []
    for file in files.file:
        if file.package != PROTO_PACKAGE:
            continue
        comments = _Comments(file)
        out += [f"## `{file.name}`", ""]
        intro = comments.paragraphs(_FILE_PACKAGE)
        if intro:
            out += [intro, ""]
        for s_index, service in enumerate(file.service):
            out += _render_service(service, comments, (_FILE_SERVICE, s_index))
        for m_index, message in enumerate(file.message_type):
            out += _render_message(message, comments, (_FILE_MESSAGE, m_index))
        for e_index, enum in enumerate(file.enum_type):
            out += _render_enum(enum, comments, (_FILE_ENUM, e_index))
    return "\n".join(out)


def _render_service(
    service: d.ServiceDescriptorProto, comments: _Comments, path: tuple[int, ...]
) -> list[str]:
    out = [f"### {service.name}", "", f"`{PROTO_PACKAGE}.{service.name}`", ""]
    doc = comments.paragraphs(*path)
    if doc:
        out += [doc, ""]
    seed = SEED_RPCS.get(service.name, frozenset())
    rows = []
    for index, method in enumerate(service.method):
        streams = [
            side
            for side, flag in (
                ("request", method.client_streaming),
                ("response", method.server_streaming),
            )
            if flag
        ]
        rows.append(
            [
                _code(method.name),
                _link(method.input_type),
                _link(method.output_type),
                ", ".join(streams) or "unary",
                SEED_MARK if method.name in seed else "",
                comments.line(*path, _SERVICE_METHOD, index),
            ]
        )
    out += _table(["RPC", "request", "response", "streams", "since", "description"], rows)
    return [*out, ""]


def _render_message(
    message: d.DescriptorProto, comments: _Comments, path: tuple[int, ...]
) -> list[str]:
    maps = {
        f"{message.name}.{nested.name}": nested
        for nested in message.nested_type
        if nested.options.map_entry
    }
    if len(maps) != len(message.nested_type) or message.enum_type:
        raise SystemExit(f"{message.name}: nested types are not rendered; extend gen_docs.py")
    out = [f"### {message.name}", ""]
    doc = comments.paragraphs(*path)
    if doc:
        out += [doc, ""]
    if not message.field:
        suffix = " (in the seed)" if message.name in SEED_FIELDS else ""
        return [*out, f"No fields{suffix}.", ""]
    seed = SEED_FIELDS.get(message.name, frozenset())
    rows = [
        [
            _code(field.name),
            str(field.number),
            _field_type(field, maps),
            SEED_MARK if field.number in seed else "",
            comments.line(*path, _MESSAGE_FIELD, index),
        ]
        for index, field in enumerate(message.field)
    ]
    out += _table(["field", "number", "type", "since", "description"], rows)
    return [*out, ""]


def _render_enum(
    enum: d.EnumDescriptorProto, comments: _Comments, path: tuple[int, ...]
) -> list[str]:
    out = [f"### {enum.name}", ""]
    doc = comments.paragraphs(*path)
    if doc:
        out += [doc, ""]
    seed = SEED_ENUM_VALUES.get(enum.name, frozenset())
    rows = [
        [
            _code(value.name),
            str(value.number),
            SEED_MARK if value.number in seed else "",
            comments.line(*path, _ENUM_VALUE, index),
        ]
        for index, value in enumerate(enum.value)
    ]
    out += _table(["value", "number", "since", "description"], rows)
    return [*out, ""]


# -- docs/configuration.md --------------------------------------------------------


def _type_name(annotation: Any) -> str:
    """A readable annotation: ``int | None``, ``Path``, ``SecretStr``."""
    if annotation is type(None):
        return "None"
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return " | ".join(_type_name(arg) for arg in typing.get_args(annotation))
    origin = typing.get_origin(annotation)
    if origin is not None:
        args = ", ".join(_type_name(arg) for arg in typing.get_args(annotation))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return str(getattr(annotation, "__name__", annotation))


def _default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, str):
        return _code(value) if value else "empty"
    return _code(repr(value))


_BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"))


def _constraints(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr, symbol in _BOUNDS:
            bound = getattr(item, attr, None)
            if bound is not None:
                parts.append(f"{symbol} {bound}")
        pattern = getattr(item, "pattern", None)
        if pattern is not None:
            parts.append(f"matches `{pattern}`")
    return ", ".join(parts)


def _env_names(prefix: str, name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    if choices is not None:
        return [str(choice) for choice in choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{prefix}{name}".upper()]


def _click_options(command: click.Command) -> dict[str, click.Option]:
    return {
        param.name: param
        for param in command.params
        if isinstance(param, click.Option) and param.name is not None and not param.hidden
    }


def _click_help(option: click.Option | None) -> str:
    """An option's help without its ``[env ...]`` or ``(env ...)`` note: the table has a column."""
    if option is None or not option.help:
        return ""
    return re.sub(r"\s*[\[(]env [^\])]*[\])]", "", option.help).strip()


def _fallback(section: str, name: str) -> str:
    return FALLBACK_DESCRIPTIONS.get(section, {}).get(name, "")


def _check_fallbacks(section: str, names: Iterable[str]) -> None:
    stale = set(FALLBACK_DESCRIPTIONS.get(section, {})) - set(names)
    if stale:
        raise SystemExit(f"gen_docs.py: FALLBACK_DESCRIPTIONS[{section!r}] names {sorted(stale)}")


def _require(section: str, name: str, description: str) -> str:
    if not description:
        raise SystemExit(
            f"gen_docs.py: {section} setting {name!r} has no description; give it one in "
            "its class, or in FALLBACK_DESCRIPTIONS"
        )
    return description


def _settings_table(
    section: str, model: type[BaseSettings], command: click.Command | None
) -> list[str]:
    prefix = str(model.model_config.get("env_prefix", ""))
    options = _click_options(command) if command is not None else {}
    _check_fallbacks(section, model.model_fields)
    rows = []
    for name, field in model.model_fields.items():
        option = options.get(name)
        description = field.description or _click_help(option) or _fallback(section, name)
        rows.append(
            [
                " or ".join(_code(env) for env in _env_names(prefix, name, field)),
                " ".join(_code(opt) for opt in option.opts) if option is not None else "",
                _code(_type_name(field.annotation)),
                _default(field.default),
                _constraints(field),
                _require(section, name, description),
            ]
        )
    unknown = set(options) - set(model.model_fields)
    if unknown:
        raise SystemExit(f"gen_docs.py: flags {sorted(unknown)} match no {model.__name__} field")
    header = ["environment", "flag", "type", "default", "allowed", "description"]
    return _table(header, rows)


def _docstring_section(obj: object, title: str) -> dict[str, str]:
    """The entries of a Google-style ``Args:``/``Attributes:`` section, joined to one line."""
    doc = inspect.cleandoc(obj.__doc__ or "")
    entries: dict[str, str] = {}
    inside = False
    current: str | None = None
    for line in doc.splitlines():
        if line.strip() == f"{title}:":
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):
            break  # the next section
        match = re.fullmatch(r" {4}(\w+)(?: \([^)]*\))?: (.*)", line)
        if match:
            current = match.group(1)
            entries[current] = match.group(2).strip()
        elif current is not None and line.strip():
            entries[current] += " " + line.strip()
    return entries


def _rst_to_md(text: str) -> str:
    return text.replace("``", "`")


def _dataclass_table(section: str, cls: type[Any]) -> list[str]:
    hints = typing.get_type_hints(cls)
    described = _docstring_section(cls, "Attributes")
    fields = dataclasses.fields(cls)
    _check_fallbacks(section, [field.name for field in fields])
    rows = []
    for field in fields:
        default: Any = field.default
        factory = field.default_factory
        if default is dataclasses.MISSING and callable(factory):
            default = factory()
        description = _rst_to_md(described.get(field.name, "")) or _fallback(section, field.name)
        rows.append(
            [
                _code(field.name),
                _code(_type_name(hints[field.name])),
                "required" if default is dataclasses.MISSING else _default(default),
                _require(section, field.name, description),
            ]
        )
    return _table(["field", "type", "default", "description"], rows)


def _signature_table(section: str, function: Callable[..., Any], doc_owner: object) -> list[str]:
    hints = typing.get_type_hints(function)
    described = _docstring_section(doc_owner, "Args")
    rows = []
    for name, parameter in inspect.signature(function).parameters.items():
        if name == "self":
            continue
        default = parameter.default
        rows.append(
            [
                _code(name),
                _code(_type_name(hints[name])),
                "required" if default is inspect.Parameter.empty else _default(default),
                _require(section, name, _rst_to_md(described.get(name, ""))),
            ]
        )
    return _table(["option", "type", "default", "description"], rows)


def _cli_table(command: click.Command) -> list[str]:
    rows = []
    for option in _click_options(command).values():
        if option.hidden or option.name in {"help", "version"}:
            continue
        envvar = option.envvar
        envs = [envvar] if isinstance(envvar, str) else list(envvar or [])
        default = "" if option.is_flag else _default(_click_default(option))
        rows.append(
            [
                " ".join(_code(opt) for opt in option.opts),
                " ".join(_code(env) for env in envs),
                default,
                _require("client CLI", str(option.name), _click_help(option)),
            ]
        )
    return _table(["flag", "environment", "default", "description"], rows)


def _click_default(option: click.Option) -> Any:
    default = option.default
    # click 8.2+ marks "no default" with a sentinel rather than None.
    if default is None or type(default).__name__ == "Sentinel" or callable(default):
        return None
    return default


def _dashboard_table() -> list[str]:
    """``DashboardSettings``' fields, with the variable ``from_env`` reads for each."""
    from jobqueue.dashboard import DashboardSettings

    fields = dataclasses.fields(DashboardSettings)
    names = {field.name for field in fields}
    missing = names - set(DASHBOARD_DESCRIPTIONS)
    stale = set(DASHBOARD_DESCRIPTIONS) - names
    if missing or stale:
        raise SystemExit(
            f"gen_docs.py: DASHBOARD_DESCRIPTIONS lacks {sorted(missing)}, "
            f"names no field {sorted(stale)}"
        )
    # The variables from_env reads: text("NAME") and number("NAME", default).
    source = inspect.getsource(DashboardSettings.from_env)
    read = {name.lower() for name in re.findall(r'\b(?:text|number)\("([A-Z_]+)"', source)}
    unknown = read - names
    if unknown:
        raise SystemExit(f"gen_docs.py: from_env reads {sorted(unknown)}, no such field")
    hints = typing.get_type_hints(DashboardSettings)
    rows = []
    for field in fields:
        env = f"JOBQUEUE_DASHBOARD_{field.name.upper()}"
        rows.append(
            [
                _code(env) if field.name in read else "not read (code only)",
                _code(field.name),
                _code(_type_name(hints[field.name])),
                _default(field.default),
                DASHBOARD_DESCRIPTIONS[field.name],
            ]
        )
    return _table(["environment", "field", "type", "default", "description"], rows)


_ENV_NOTE = re.compile(r"\s*\[env (\w+)(?:; default:? ([^\]]*))?\]")


def _worker_command_table() -> list[str]:
    """The ``jobqueue-worker`` command's options, from its argparse parser."""
    from unittest import mock

    from jobqueue.worker import WorkerSettings
    from jobqueue.worker._command import _parser

    # The parser reads its defaults from the environment as it is built: build
    # it from a clean one, so the doc does not depend on who generates it.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    with mock.patch.dict(os.environ, clean, clear=True):
        parser = _parser()
    worker_defaults = {
        field.name: field.default
        for field in dataclasses.fields(WorkerSettings)
        if field.default is not dataclasses.MISSING
    }
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        help_text = action.help or ""
        note = _ENV_NOTE.search(help_text)
        description = _ENV_NOTE.sub("", help_text).strip()
        env = note.group(1) if note else None
        stated = note.group(2) if note else None
        if action.dest in worker_defaults:
            default = f"the Worker's (`{worker_defaults[action.dest]!r}` unless set in code)"
        elif isinstance(action, argparse._StoreTrueAction):
            default = "off"
        elif stated == "none":
            default = "unset"
        elif stated:
            default = stated if " " in stated else _code(stated)
        elif not action.option_strings:
            default = "required"
        else:
            default = _default(action.default)
        flag = " ".join(_code(opt) for opt in action.option_strings) or _code(
            str(action.metavar or action.dest)
        )
        rows.append(
            [
                flag,
                _code(env) if env else "",
                default,
                _require("worker command", action.dest, description),
            ]
        )
    return _table(["flag", "environment", "default", "description"], rows)


def render_configuration() -> str:
    """The generated body of ``docs/configuration.md``."""
    # Imported here so that generating the API reference alone needs none of them.
    from jobqueue.client import AsyncJobClient, JobClient
    from jobqueue.client import cli as client_cli
    from jobqueue.client._channel import DEFAULT_TARGET, TARGET_ENV
    from jobqueue.redis import RedisStoreSettings
    from jobqueue.worker import WorkerSettings
    from jobqueue_example_worker.__main__ import main as example_worker_cli
    from jobqueue_example_worker._settings import ExampleWorkerSettings
    from jobqueue_server.__main__ import cli as server_cli
    from jobqueue_server.settings import ServerSettings

    if inspect.signature(JobClient.__init__) != inspect.signature(AsyncJobClient.__init__):
        raise SystemExit("gen_docs.py: JobClient and AsyncJobClient options differ; document both")
    client_command = client_cli.cli
    auth_option = _click_options(client_command).get("token")
    auth_env = auth_option.envvar if auth_option is not None else None

    out: list[str] = []
    out += ["## Server: `jobqueue-server`", ""]
    out += [
        f"From `{ServerSettings.__module__}.{ServerSettings.__name__}` and the "
        "`jobqueue-server` command. A flag overrides its environment variable.",
        "",
    ]
    out += _settings_table("server", ServerSettings, server_cli)
    out += ["", "## Example worker: `jobqueue-example-worker`", ""]
    out += [
        f"From `{ExampleWorkerSettings.__module__}.{ExampleWorkerSettings.__name__}` and the "
        "`jobqueue-example-worker` command. With `JOBQUEUE_REDIS_URL` set the worker takes "
        "jobs from Redis directly; otherwise through the server at `JOBQUEUE_SERVER`.",
        "",
    ]
    out += _settings_table("example-worker", ExampleWorkerSettings, example_worker_cli)
    out += ["", "## Worker SDK: `jobqueue.worker.WorkerSettings`", ""]
    out += [
        "Keyword-only fields of a frozen dataclass, passed as `Worker(source, settings=...)`. "
        "The SDK reads no environment variables; a service maps its own settings onto these.",
        "",
    ]
    out += _dataclass_table("worker", WorkerSettings)
    out += ["", "## Redis store: `jobqueue.redis.RedisStoreSettings`", ""]
    out += [
        "Keyword-only fields of a frozen dataclass, passed as "
        "`RedisJobStore(settings, clock=...)`. The SDK reads no environment variables.",
        "",
    ]
    out += _dataclass_table("redis-store", RedisStoreSettings)
    out += ["", "## Client SDK: `JobClient` and `AsyncJobClient`", ""]
    out += [
        "Keyword-only constructor options, the same for both clients.",
        "",
    ]
    out += _signature_table("client", JobClient.__init__, JobClient)
    out += ["", "Environment variables:", ""]
    env_rows = [
        [
            _code(TARGET_ENV),
            "the SDK (when `target` is not given) and the `jobqueue` CLI (`--server`)",
            _code(DEFAULT_TARGET),
        ],
    ]
    if isinstance(auth_env, str):
        env_rows.append(
            [
                _code(auth_env),
                "the `jobqueue` CLI only (`--token`); the SDK takes `auth_token` explicitly",
                "unset",
            ]
        )
    out += _table(["variable", "read by", "default"], env_rows)
    out += ["", "## Client CLI: `jobqueue`", ""]
    out += ["Options of the `jobqueue` command, before its subcommand.", ""]
    out += _cli_table(client_command)
    out += ["", "## Worker command: `jobqueue-worker`", ""]
    out += [
        "From `jobqueue.worker._command`: `jobqueue-worker path.to.module:worker` (also run as "
        "`jobqueue worker`) runs a `Worker` defined in your code. A flag wins over its "
        "variable, and either wins over what the Worker was given in code (its source and "
        "its `WorkerSettings`). With neither `--redis-url` nor `--server`, "
        "`JOBQUEUE_REDIS_URL` is read first, then `JOBQUEUE_SERVER`; a Worker with no source "
        "at all then takes jobs through the server at `localhost:8080`. The numeric "
        "variables are read when the command starts: one that is not a number is a usage "
        "error (exit status 2).",
        "",
    ]
    out += _worker_command_table()
    out += ["", "## Dashboard: `jobqueue.dashboard.DashboardSettings`", ""]
    out += [
        "Keyword-only fields of a frozen dataclass, passed as `Dashboard(..., settings=...)`. "
        "`DashboardSettings.from_env()` reads them from `JOBQUEUE_DASHBOARD_*` (a malformed "
        "value raises ValueError, so a server meant to be protected refuses to start); "
        "`jobqueue-server` calls it at start, with the HTTP wire (the default). Fields it "
        "does not read keep their defaults there.",
        "",
    ]
    out += _dashboard_table()
    out += ["", "## Container health probe: `jobqueue-healthcheck`", ""]
    out += [
        "Probes the server's `grpc.health.v1` service (exit 0 SERVING, 1 not serving, "
        "2 unreachable); with no flags it follows the server's own `JOBQUEUE_PORT` and "
        "TLS settings, as a container's healthcheck needs.",
        "",
    ]
    from jobqueue_server._healthcheck import cli as healthcheck_command

    out += _cli_table(healthcheck_command)
    return "\n".join(out)


# -- entry point ------------------------------------------------------------------

_API_HEAD = "# API reference\n\n"
_CONFIG_HEAD = "# Configuration reference\n\n"


def generate() -> dict[Path, str]:
    """Every generated doc, by path, as it should be committed."""
    return {
        API_DOC: _splice(API_DOC, render_api(compile_protos()), _API_HEAD),
        CONFIG_DOC: _splice(CONFIG_DOC, render_configuration(), _CONFIG_HEAD),
    }


def stale_docs() -> list[Path]:
    """The docs whose committed text differs from what ``generate`` produces."""
    return [
        path
        for path, text in generate().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a doc is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_docs()
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale: run `{REGENERATE}`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generate().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
