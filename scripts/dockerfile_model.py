"""deploy/Dockerfile and .dockerignore as the smoke run reads them.

Stages and their instructions, the targets (final images) and the stages each is built from,
flags, exec-form commands, and Docker's ignore-pattern matching.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

#: The build context: the repository root.
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Instruction:
    """One Dockerfile instruction: its keyword, arguments and line number."""

    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    """One build stage: its name, what it is built ``FROM`` and its instructions."""

    name: str
    base: str = ""
    instructions: list[Instruction] = field(default_factory=list)

    def copied_from(self) -> list[str]:
        """The ``--from`` of each of its ``COPY`` instructions."""
        found = []
        for ins in self.instructions:
            if ins.keyword == "COPY":
                source = split_flags(ins.args)[0].get("from")
                if source is not None:
                    found.append(source)
        return found


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions (continuations joined, comments dropped)."""
    stages: list[Stage] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        pending = ""
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, words[0]))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def targets(stages: list[Stage]) -> list[Stage]:
    """The images the file builds: the stages no other stage is built from or copies from."""
    used = {s.base for s in stages} | {name for s in stages for name in s.copied_from()}
    return [s for s in stages if s.name not in used]


def lineage(stages: list[Stage], target: Stage) -> list[Stage]:
    """``target`` and the stages it is built ``FROM``, the first ancestor first."""
    by_name = {s.name: s for s in stages}
    chain = [target]
    while chain[0].base in by_name:
        chain.insert(0, by_name[chain[0].base])
    return chain


def build_order(stages: list[Stage], target: Stage) -> list[Stage]:
    """Every stage ``target`` needs (ancestors, ``COPY --from`` sources), each after its needs.

    A stage without instructions (an external image named for ``COPY --from``) is left out.
    """
    by_name = {s.name: s for s in stages}
    order: list[Stage] = []

    def visit(stage: Stage) -> None:
        for name in [stage.base, *stage.copied_from()]:
            if name in by_name and by_name[name] not in order:
                visit(by_name[name])
        if stage.instructions and stage not in order:
            order.append(stage)

    visit(target)
    return order


def split_flags(args: str) -> tuple[dict[str, str], list[str]]:
    """Leading ``--flag=value`` options and the remaining words."""
    words = shlex.split(args)
    flags: dict[str, str] = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, words


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's matching: ``*`` and ``?`` stay within one path segment, ``**`` crosses them."""
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                i += 1
                out += "(?:.*/)?"
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.index("]", i)
            out += pattern[i : end + 1]
            i = end
        else:
            out += re.escape(char)
        i += 1
    return re.compile(f"^{out}$")


def load_dockerignore(path: Path) -> list[tuple[bool, re.Pattern[str]]]:
    """The ignore rules in order: whether each negates (``!``), and its pattern."""
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        cleaned = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        rules.append((negate, _pattern_regex(cleaned)))
    return rules


def is_ignored(relpath: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Last matching rule wins; a rule matching a parent folder matches the path too."""
    parts = relpath.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negate, regex in rules:
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


def copy_from_context(source: str, dest: Path, rules: list[tuple[bool, re.Pattern[str]]]) -> int:
    """Copy what the build context holds of ``source`` to ``dest``; the number of files."""
    origin = ROOT / source
    if not origin.exists() or is_ignored(source.rstrip("/"), rules):
        raise SystemExit(f"COPY source {source} is missing from the build context")
    files = [origin] if origin.is_file() else sorted(p for p in origin.rglob("*") if p.is_file())
    copied = 0
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if is_ignored(rel, rules):
            continue
        target = dest if origin.is_file() else dest / path.relative_to(origin)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied += 1
    if not copied:
        raise SystemExit(f"COPY source {source}: every file is excluded by .dockerignore")
    return copied


def last(chain: list[Stage], keyword: str) -> str:
    """The arguments of the ``keyword`` instruction in force at the end of ``chain``."""
    for stage in reversed(chain):
        for ins in reversed(stage.instructions):
            if ins.keyword == keyword:
                return ins.args
    raise SystemExit(f"the image {chain[-1].name} has no {keyword}")


def exec_form(chain: list[Stage], keyword: str) -> list[str]:
    """The exec-form (JSON) command of the image's ``keyword`` instruction (``lineage``)."""
    args = last(chain, keyword)
    if keyword == "HEALTHCHECK":
        args = args[args.index("CMD") + 3 :]
    value = json.loads(args)
    if not isinstance(value, list):
        raise SystemExit(f"{keyword} must use the exec (JSON) form")
    return [str(v) for v in value]
