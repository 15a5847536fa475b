"""What the configuration reference says of one settings field.

Its description (from the field or the ``#:`` comments in the class source), its type with
bounds, and its default as the page prints it. Used by ``gen_config_docs.py``.
"""

from __future__ import annotations

import ast
import enum
import functools
import inspect
import io
import json
import re
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

import annotated_types
from pydantic import BaseModel, SecretStr

if typing.TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic.fields import FieldInfo

MAX_DEFAULT_CHARS = 60
EN_DASH = "\u2013"

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


# ------------------------------------------------------------------ source comments


def markdown(text: str) -> str:
    """ReST inline literals (````x````) → Markdown (```x```), paragraphs unwrapped.

    Each paragraph ends with a full stop (one is added when it has no closing punctuation).
    """
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())]
    return "\n\n".join(p if p[-1] in ".!?:)" else f"{p}." for p in paragraphs if p)


def docstring(cls: type) -> str:
    """The class's own docstring as Markdown (not an inherited one)."""
    doc = cls.__dict__.get("__doc__")
    return markdown(inspect.cleandoc(doc)) if isinstance(doc, str) else ""


@functools.cache
def comments(cls: type) -> dict[str, str]:
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
            found[statement.target.id] = markdown(text)
    return found


def description(owner: type[BaseModel], name: str, field: FieldInfo) -> str:
    """The field's description, else its comment in the closest declaring class."""
    if field.description:
        return markdown(field.description)
    for cls in owner.__mro__:
        if name in inspect.get_annotations(cls):
            comment = comments(cls).get(name)
            if comment:
                return comment
    return ""


# ------------------------------------------------------------------ types and values


def group_type(annotation: Any) -> type[BaseModel] | None:
    """The settings group a field holds, if it is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def noun(annotation: Any) -> str:
    """A type as a short noun, for rows and for the members of lists and objects."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return noun(args[0])
    if origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        inner = " or ".join(noun(a) for a in members)
        return f"optional {inner}" if len(members) < len(args) else inner
    if origin is Literal:
        return " | ".join(str(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"JSON list of {noun(args[0]) if args else 'values'}"
    if origin is dict:
        return f"JSON object of {noun(args[-1]) if args else 'values'}"
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


def type_text(field: FieldInfo) -> str:
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
    text = noun(field.annotation)
    if set(bounds) == {"≥", "≤"}:
        return f"{text} {bounds['≥']}{EN_DASH}{bounds['≤']}"
    limits = [f"{symbol} {value}" for symbol, value in bounds.items()]
    return f"{text} {', '.join(limits)}" if limits else text


def plain(value: Any) -> Any:
    """A JSON-able copy of a default, secrets masked."""
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, BaseModel):
        return {name: plain(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def value_text(value: Any) -> str:
    """A default as the page prints it: code, shortened, secrets masked."""
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
        text = json.dumps(plain(value), ensure_ascii=False, separators=(", ", ": "))
    if len(text) > MAX_DEFAULT_CHARS:
        text = text[: MAX_DEFAULT_CHARS - 1] + "…"
    return f"`{text}`"


def machine_dependent(factory: Callable[..., Any] | None) -> str | None:
    """What to print instead of a default that depends on the machine, if it does."""
    code = getattr(factory, "__code__", None)
    for name in getattr(code, "co_names", ()):
        if name in MACHINE_DEPENDENT:
            return MACHINE_DEPENDENT[name]
    return None


def default(field: FieldInfo, parent: BaseModel | None, name: str) -> tuple[str, Any]:
    """``(text, value)`` of a field's effective default (``value`` is ``None`` if computed)."""
    computed = machine_dependent(field.default_factory)
    if computed:
        return computed, None
    if parent is not None:
        value = getattr(parent, name)
    else:
        value = field.get_default(call_default_factory=True, validated_data={})
    return value_text(value), value
