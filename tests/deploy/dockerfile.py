"""Just enough of the Dockerfile and .dockerignore syntaxes to check what the image copies and runs."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import attrs


@attrs.frozen
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    arguments: str  # the rest, continuation lines joined
    line: int  # 1-based line where it starts

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT (or None for the shell form)."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        value = json.loads(text)
        assert isinstance(value, list)
        return [str(item) for item in value]


@attrs.frozen
class Stage:
    image: str  # ARG defaults substituted
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name or self.image}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """Every ENV of the stage (``KEY=value`` pairs; no variable expansion)."""
        result: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for item in shlex.split(instruction.arguments):
                key, sep, value = item.partition("=")
                assert sep, f"line {instruction.line}: use the KEY=value form of ENV"
                result[key] = value
        return result


def instructions(text: str) -> Iterator[Instruction]:
    """The instructions, with comments dropped and backslash continuations joined (Docker's default escape)."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are removed by Docker too
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].rstrip())
            continue
        pending.append(stripped)
        keyword, _, arguments = " ".join(pending).partition(" ")
        yield Instruction(keyword.upper(), arguments.strip(), start)
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"


def stages(text: str) -> list[Stage]:
    """The build stages in order, FROM images resolved with the global ARG defaults."""
    args: dict[str, str] = {}
    result: list[Stage] = []
    image: str | None = None
    name: str | None = None
    body: list[Instruction] = []
    for instruction in instructions(text):
        if instruction.keyword == "ARG" and image is None:
            key, _, default = instruction.arguments.partition("=")
            args[key.strip()] = default.strip()
        elif instruction.keyword == "FROM":
            if image is not None:
                result.append(Stage(image, name, tuple(body)))
            words = [w for w in instruction.arguments.split() if not w.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            body = []
        else:
            assert image is not None, f"line {instruction.line}: {instruction.keyword} before FROM"
            body.append(instruction)
    assert image is not None, "no FROM"
    result.append(Stage(image, name, tuple(body)))
    return result


@attrs.frozen
class Copy:
    sources: tuple[str, ...]
    destination: str
    from_stage: str | None
    line: int


def copy_of(instruction: Instruction) -> Copy:
    """A COPY's sources and destination, its flags (--from, --chown...) set aside."""
    text = instruction.arguments
    flags: dict[str, str] = {}
    while text.startswith("--"):
        flag, _, text = text.partition(" ")
        key, _, value = flag[2:].partition("=")
        flags[key] = value
        text = text.strip()
    words = json.loads(text) if text.startswith("[") else shlex.split(text)
    assert len(words) >= 2, f"line {instruction.line}: COPY needs a source and a destination"
    return Copy(tuple(words[:-1]), words[-1], flags.get("from"), instruction.line)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


class DockerIgnore:
    """.dockerignore rules as Docker applies them: in order, the last matching rule wins, ``!`` re-includes, and a
    rule that matches a directory matches everything under it. Covers ``*``, ``?`` and ``**``."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            negated = line.startswith("!")
            pattern = str(PurePosixPath(line.lstrip("!").strip().strip("/")))
            self.rules.append((negated, _glob_regex(pattern)))

    def excluded(self, path: str) -> bool:
        parts = PurePosixPath(path).parts
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        excluded = False
        for negated, regex in self.rules:
            if any(regex.match(candidate) for candidate in candidates):
                excluded = not negated
        return excluded


def context_files(root: Path, ignore: DockerIgnore, source: str) -> list[str]:
    """The files of the build context under ``source`` (a path or glob relative to ``root``) that Docker sends."""
    files: list[str] = []
    for match in sorted(root.glob(source)):
        paths = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file()]
        files += [p.relative_to(root).as_posix() for p in paths]
    return [f for f in files if not ignore.excluded(f)]
