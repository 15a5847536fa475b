"""Generate ``docs/configuration.md`` from the settings classes.

``make docs`` runs it. ``libs/servicekit/tests/test_config_docs.py`` renders it again in
memory and fails when the committed file differs, so a settings change without
``make docs`` is caught.

Every leaf field of ``user_service.config.UserServiceSettings`` becomes one row: its
environment variable, type, default and description. A description comes from, in order:

1. the field's ``description``;
2. the ``#:`` comment lines right above the field, or a trailing ``#`` comment on it, in
   the class that declares it (the closest one in the MRO).

A field with neither is a gap the test of this page reports.

The output depends only on the code, never on the machine: a default computed from the
machine (the CPU count) is described rather than printed, and no settings object is built
from the environment.

Usage: ``python scripts/gen_config_docs.py [--check] [--output PATH]``.
"""

from __future__ import annotations

import argparse
import ast
import enum
import functools
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple, Union

import annotated_types
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo

from user_service.config import UserServiceSettings

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "configuration.md"
SETTINGS = UserServiceSettings
PREFIX = str(SETTINGS.model_config.get("env_prefix", ""))
DELIMITER = str(SETTINGS.model_config.get("env_nested_delimiter", "__"))
MAX_DEFAULT_CHARS = 60
EN_DASH = "\u2013"

#: Unprefixed platform variables (top-level fields with a ``validation_alias``) → the field
#: they set (see ``ServiceSettings._fold_platform_variables``). A new alias must be added.
PLATFORM_TARGETS = {
    "database_url": "database.url",
    "redis_url": "redis.url",
    "host": "server.host",
    "port": "server.port",
    "workers": "server.workers",
    "data_dir": "data_dir",
}

#: Names in a ``default_factory`` that make its value depend on the machine → what to print.
MACHINE_DEPENDENT = {
    "cpu_count": "number of CPUs",
    "process_cpu_count": "number of CPUs",
    "sched_getaffinity": "number of CPUs",
    "environ": "(computed)",
    "getenv": "(computed)",
    "gethostname": "(computed)",
    "getpid": "(computed)",
    "getuid": "(computed)",
    "cwd": "(computed)",
    "home": "(computed)",
    "now": "(computed)",
    "today": "(computed)",
    "time": "(computed)",
    "uuid4": "(computed)",
    "random": "(computed)",
}


class Row(NamedTuple):
    """One documented setting."""

    env: str
    type: str
    default: str
    description: str


class Section(NamedTuple):
    """A group of settings: a heading, an introduction, rows and extra Markdown blocks."""

    heading: str
    intro: str
    rows: list[Row]
    blocks: list[str]


# ------------------------------------------------------------------ source comments


def _markdown(text: str) -> str:
    """reST inline literals (````x````) → Markdown (```x```), paragraphs unwrapped and
    ending with a full stop."""
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())]
    return "\n\n".join(p if p[-1] in ".!?:)" else f"{p}." for p in paragraphs if p)


def _docstring(cls: type) -> str:
    doc = cls.__dict__.get("__doc__")
    return _markdown(inspect.cleandoc(doc)) if isinstance(doc, str) else ""


@functools.cache
def _comments(cls: type) -> dict[str, str]:
    """Field name → its ``#:`` comment (lines above) or trailing comment, in ``cls``'s source."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    lines = source.splitlines()
    trailing: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        row, col = token.start
        if token.type == tokenize.COMMENT and lines[row - 1][:col].strip():
            trailing[row] = token.string.lstrip("#").strip()
    node = ast.parse(source).body[0]
    if not isinstance(node, ast.ClassDef):
        return {}
    found: dict[str, str] = {}
    for statement in node.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)):
            continue
        above: list[str] = []
        index = statement.lineno - 2
        while index >= 0 and lines[index].strip().startswith("#:"):
            above.insert(0, lines[index].strip()[2:].strip())
            index -= 1
        text = " ".join(above)
        end = statement.end_lineno or statement.lineno
        comment = trailing.get(end, "")
        if not text and comment and not re.match(r"(noqa|type:|pragma)\b", comment):
            text = comment
        if text:
            found[statement.target.id] = _markdown(text)
    return found


def _description(owner: type[BaseModel], name: str, field: FieldInfo, path: str) -> str:
    if field.description:
        return _markdown(field.description)
    for cls in owner.__mro__:
        if name in inspect.get_annotations(cls):
            comment = _comments(cls).get(name)
            if comment:
                return comment
    return ""


# ------------------------------------------------------------------ types and values


def _group_type(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _noun(annotation: Any) -> str:
    """A type as a short noun, for rows and for the members of lists and objects."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _noun(args[0])
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        inner = " or ".join(_noun(a) for a in members)
        return f"optional {inner}" if len(members) < len(args) else inner
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"JSON list of {_noun(args[0]) if args else 'values'}"
    if origin is dict:
        return f"JSON object of {_noun(args[-1]) if args else 'values'}"
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return " | ".join(str(member.value) for member in annotation)
        if issubclass(annotation, SecretStr):
            return "secret"
        if issubclass(annotation, Path):
            return "path"
        if issubclass(annotation, BaseModel):
            return annotation.__name__.removesuffix("Settings").lower() or "object"
        return annotation.__name__
    return str(annotation)


def _type_text(field: FieldInfo) -> str:
    """The type with its bounds: ``int ≥ 1``, ``float > 0``, ``int 0-65535`` (en dash)."""
    bounds: dict[str, Any] = {}
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            bounds["≥"] = meta.ge
        elif isinstance(meta, annotated_types.Gt):
            bounds[">"] = meta.gt
        elif isinstance(meta, annotated_types.Le):
            bounds["≤"] = meta.le
        elif isinstance(meta, annotated_types.Lt):
            bounds["<"] = meta.lt
    text = _noun(field.annotation)
    if set(bounds) == {"≥", "≤"}:
        return f"{text} {bounds['≥']}{EN_DASH}{bounds['≤']}"
    limits = [f"{symbol} {value}" for symbol, value in bounds.items()]
    return f"{text} {', '.join(limits)}" if limits else text


def _plain(value: Any) -> Any:
    """A JSON-able copy of a default, secrets masked."""
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        return {name: _plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def _value_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        text = value if value else '""'
    elif isinstance(value, int | float | enum.Enum | Path):
        text = str(value.value if isinstance(value, enum.Enum) else value)
    else:
        text = json.dumps(_plain(value), ensure_ascii=False, separators=(", ", ": "))
    if len(text) > MAX_DEFAULT_CHARS:
        text = text[: MAX_DEFAULT_CHARS - 1] + "…"
    return f"`{text}`"


def _machine_dependent(factory: Callable[..., Any] | None) -> str | None:
    """What to print instead of a default that depends on the machine, if it does."""
    code = getattr(factory, "__code__", None)
    for name in getattr(code, "co_names", ()):
        if name in MACHINE_DEPENDENT:
            return MACHINE_DEPENDENT[name]
    return None


def _default(field: FieldInfo, parent: BaseModel | None, name: str) -> tuple[str, Any]:
    """``(text, value)`` of a field's effective default (``value`` is ``None`` if computed)."""
    computed = _machine_dependent(field.default_factory)
    if computed:
        return computed, None
    if parent is not None:
        value = getattr(parent, name)
    else:
        value = field.get_default(call_default_factory=True, validated_data={})
    return _value_text(value), value


# ------------------------------------------------------------------ walking the settings


def _env(path: list[str]) -> str:
    return (PREFIX + DELIMITER.join(path)).upper()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _model_table(values: dict[str, BaseModel]) -> str:
    """A ``dict[str, Model]`` default as a table: one row per key, one column per field."""
    model = type(next(iter(values.values())))
    columns = list(model.model_fields)
    rows = [
        [f"`{key}`", *(_value_text(getattr(item, col)) for col in columns)]
        for key, item in values.items()
    ]
    table = _table(["name", *(f"`{col}`" for col in columns)], rows)
    described = {
        col: _description(model, col, info, "") for col, info in model.model_fields.items()
    }
    fields = [
        f"- `{col}` ({_type_text(model.model_fields[col])}): {text}"
        for col, text in described.items()
        if text
    ]
    intro = _docstring(model)
    return "\n\n".join(filter(None, [intro, table, "\n".join(fields)]))


def _group_default(field: FieldInfo, group: type[BaseModel]) -> BaseModel | None:
    value = field.get_default(call_default_factory=True, validated_data={})
    return value if isinstance(value, group) else None


def _factory_note(path: list[str], group: type[BaseModel], default: BaseModel | None) -> str:
    """Warn when the group's default differs from its class defaults.

    An environment variable for one field of the group makes pydantic-settings build the
    group from the variables given, so every other field takes its *class* default.
    """
    if default is None:
        return ""
    try:
        bare = group()
    except ValidationError:
        return ""
    changed = [
        name
        for name, info in group.model_fields.items()
        if not _machine_dependent(info.default_factory)
        and _plain(getattr(bare, name)) != _plain(getattr(default, name))
    ]
    if not changed:
        return ""
    lost = ", ".join(f"`{name}` becomes {_value_text(getattr(bare, name))}" for name in changed)
    also = ", ".join(f"`{_env([*path, name])}`" for name in changed)
    return (
        f"**Caution:** these defaults come from a factory. Setting any `{_env(path)}{DELIMITER}*` "
        f"variable builds the group from its class defaults instead: {lost} unless you set "
        f"{also} as well (JSON)."
    )


def _sections(
    model: type[BaseModel], parent: BaseModel | None, path: list[str]
) -> Iterator[Section]:
    """The section of ``model``'s own leaf fields, then one per nested group."""
    rows: list[Row] = []
    blocks: list[str] = []
    groups: list[tuple[str, FieldInfo, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        group = _group_type(field.annotation)
        if group is not None:
            groups.append((name, field, group))
            continue
        dotted = ".".join([*path, name])
        if not path and name in PLATFORM_TARGETS:
            continue  # in the platform table
        text, value = _default(field, parent, name)
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(v, BaseModel) for v in value.values())
        ):
            text = f"{len(value)} entries, table below"
            blocks.append(_model_table(value))
        description = _description(model, name, field, dotted)
        overriders = [k for k, target in PLATFORM_TARGETS.items() if target == dotted and k != name]
        if overriders:
            alias = str(SETTINGS.model_fields[overriders[0]].validation_alias)
            description = f"{description} `{alias}` wins." if description else f"`{alias}` wins."
        rows.append(Row(_env([*path, name]), _type_text(field), text, description))
    if path:
        heading = f"`{'.'.join(path)}`: `{_env(path)}{DELIMITER}*`"
        note = _factory_note(path, model, parent)
        intro = "\n\n".join(filter(None, [_docstring(model), note]))
    else:
        heading, intro = "Top level", ""
    yield Section(heading, intro, rows, blocks)
    for name, field, group in groups:
        default = _group_default(field, group)
        if parent is not None:
            default = getattr(parent, name)
        yield from _sections(group, default, [*path, name])


def _platform_rows() -> list[list[str]]:
    aliased = {
        name
        for name, field in SETTINGS.model_fields.items()
        if isinstance(field.validation_alias, str)
    }
    unknown = aliased ^ set(PLATFORM_TARGETS)
    if unknown:
        raise RuntimeError(f"gen_config_docs: update PLATFORM_TARGETS for {sorted(unknown)}")
    rows = []
    for name in PLATFORM_TARGETS:
        field = SETTINGS.model_fields[name]
        target = PLATFORM_TARGETS[name]
        owner: type[BaseModel] = SETTINGS
        default: Any = None
        parts = target.split(".")
        for part in parts[:-1]:
            group_field = owner.model_fields[part]
            group = _group_type(group_field.annotation)
            if group is None:
                raise RuntimeError(f"gen_config_docs: {part!r} in {target!r} is not a group")
            default = _group_default(group_field, group)
            owner = group
        target_field = owner.model_fields[parts[-1]]
        text, _ = _default(target_field, default, parts[-1])
        rows.append(
            [
                f"`{field.validation_alias}`",
                f"`{target}`",
                _type_text(field),
                text,
                _description(SETTINGS, name, field, name),
            ]
        )
    return rows


INTRO = f"""\
# Configuration reference

<!-- Generated by scripts/gen_config_docs.py from {SETTINGS.__module__}.{SETTINGS.__name__}.
     Do not edit: change the settings classes and run `make docs`. -->

Every setting of the user service, generated from the settings classes by
`scripts/gen_config_docs.py` (`make docs`); a test fails when this page and the code
disagree. How to run the service is in [operations.md](operations.md).

Settings are read once at start-up from the environment and from a `.env` file in the
working directory (the environment wins); an invalid value stops the process.

- Service variables start with `{PREFIX}`; a group and its field are joined with
  `{DELIMITER}`: `{PREFIX}DATABASE{DELIMITER}POOL_SIZE=20`,
  `{PREFIX}EMAIL{DELIMITER}SMTP{DELIMITER}HOST=mail`.
- Names are case-insensitive. Unknown variables are ignored, so a typo does nothing
  (`make deploy-check` checks the names used in `deploy/`).
- Lists and objects are JSON: `{PREFIX}HTTP{DELIMITER}TRUSTED_HOSTS='["users.internal"]'`.
  An object also takes one variable per key, lower-cased:
  `{PREFIX}INTROSPECTION{DELIMITER}CLIENTS{DELIMITER}ORDERS=…` sets the client `orders`.
- A `secret` prints as `**********`; a secret default shows here as `(secret)`.
- An *optional* setting may be left unset (the default column then says `unset`).
"""


def render() -> str:
    """The whole of ``docs/configuration.md``."""
    parts = [INTRO.rstrip()]
    parts.append(
        "## Platform variables\n\n"
        "Read without the prefix, because every deployment tool speaks them. Each sets the "
        "field named in the second column and wins over that field's prefixed variable.\n\n"
        + _table(["variable", "sets", "type", "default", "description"], _platform_rows())
    )
    sections = list(_sections(SETTINGS, None, []))
    undocumented = [row.env for section in sections for row in section.rows if not row.description]
    if undocumented:
        raise RuntimeError(f"gen_config_docs: add a #: comment to {undocumented}")
    for section in sections:
        body = [f"## {section.heading}"]
        if section.intro:
            body.append(section.intro)
        if section.rows:
            body.append(
                _table(
                    ["variable", "type", "default", "description"],
                    [
                        [f"`{row.env}`", row.type, row.default, row.description]
                        for row in section.rows
                    ],
                )
            )
        body.extend(section.blocks)
        parts.append("\n\n".join(body))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` compare) the reference; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=OUTPUT, help="default: %(default)s")
    parser.add_argument("--check", action="store_true", help="fail if the file is out of date")
    args = parser.parse_args(argv)
    text = render()
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            sys.stderr.write(f"{output} is out of date: run `make docs`\n")
            return 1
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    sys.stdout.write(
        f"wrote {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
