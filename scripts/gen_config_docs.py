"""Generate ``docs/configuration.md`` from the settings classes.

``make docs`` runs it. ``services/user_service/tests/unit/test_config_docs.py`` renders it again in
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
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import settings_fields
from pydantic import BaseModel, ValidationError

from user_service.config import UserServiceSettings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "configuration.md"
SETTINGS = UserServiceSettings
PREFIX = str(SETTINGS.model_config.get("env_prefix", ""))
DELIMITER = str(SETTINGS.model_config.get("env_nested_delimiter", "__"))
#: Unprefixed platform variables (top-level fields with a ``validation_alias``) → the field
#: they set (see ``ServiceSettings._fold_platform_variables``). A new alias must be added.
PLATFORM_TARGETS = {
    "database_url": "database.url",
    "redis_url": "redis.url",
    "host": "server.host",
    "port": "server.port",
    "workers": "server.workers",
    "data_dir": "data_dir",
    "event_seal_keys": "events.seal_keys",
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
        [f"`{key}`", *(settings_fields.value_text(getattr(item, col)) for col in columns)]
        for key, item in values.items()
    ]
    table = _table(["name", *(f"`{col}`" for col in columns)], rows)
    described = {
        col: settings_fields.description(model, col, info)
        for col, info in model.model_fields.items()
    }
    fields = [
        f"- `{col}` ({settings_fields.type_text(model.model_fields[col])}): {text}"
        for col, text in described.items()
        if text
    ]
    intro = settings_fields.docstring(model)
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
        if not settings_fields.machine_dependent(info.default_factory)
        and settings_fields.plain(getattr(bare, name))
        != settings_fields.plain(getattr(default, name))
    ]
    if not changed:
        return ""
    lost = ", ".join(
        f"`{name}` becomes {settings_fields.value_text(getattr(bare, name))}" for name in changed
    )
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
        group = settings_fields.group_type(field.annotation)
        if group is not None:
            groups.append((name, field, group))
            continue
        dotted = ".".join([*path, name])
        if not path and name in PLATFORM_TARGETS:
            continue  # in the platform table
        text, value = settings_fields.default(field, parent, name)
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(v, BaseModel) for v in value.values())
        ):
            text = f"{len(value)} entries, table below"
            blocks.append(_model_table(value))
        description = settings_fields.description(model, name, field)
        overriders = [k for k, target in PLATFORM_TARGETS.items() if target == dotted and k != name]
        if overriders:
            alias = str(SETTINGS.model_fields[overriders[0]].validation_alias)
            description = f"{description} `{alias}` wins." if description else f"`{alias}` wins."
        rows.append(Row(_env([*path, name]), settings_fields.type_text(field), text, description))
    if path:
        heading = f"`{'.'.join(path)}`: `{_env(path)}{DELIMITER}*`"
        note = _factory_note(path, model, parent)
        intro = "\n\n".join(filter(None, [settings_fields.docstring(model), note]))
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
            group = settings_fields.group_type(group_field.annotation)
            if group is None:
                raise RuntimeError(f"gen_config_docs: {part!r} in {target!r} is not a group")
            default = _group_default(group_field, group)
            owner = group
        target_field = owner.model_fields[parts[-1]]
        text, _ = settings_fields.default(target_field, default, parts[-1])
        rows.append(
            [
                f"`{field.validation_alias}`",
                f"`{target}`",
                settings_fields.type_text(field),
                text,
                settings_fields.description(SETTINGS, name, field),
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
  `{PREFIX}RATE_LIMIT{DELIMITER}RULES{DELIMITER}LOGIN_IP='{{"limit": 5}}'` sets one rule.
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
