"""The matrix as a YAML file (`snnbench run --matrix FILE`), read with line numbers.

    methods:                      # a list of names, or NAME: {PARAM: VALUE}
      - naive
      - robust: {percentile: 99.99}
      - robust: {percentile: 99.9}  # the same method twice, with other parameters
    architectures: [vgg11, {resnet20: {width: 0.25}}]
    datasets: [digits]
    seeds: [0, 1, 2]
    T: [1, 2, 4, 32]
    epochs: 1                     # optional, as --epochs
    executor:                     # optional, as --executor / -j / --set NAME.PARAM=
      name: slurm
      jobs: 8
      partition: gpu
      time_min: 120

Every error names the file, the line and the key (`matrix.yaml:4: methods[1].robust:
...`). Names and parameter values are checked against the plugins by matrix.build_plan,
which reports them at the same places.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from snnbench_suite.errors import UsageError

TOP_LEVEL_KEYS = ("methods", "architectures", "datasets", "seeds", "T", "epochs", "executor")
ALIASES = {"archs": "architectures", "steps": "T"}


class MatrixFileError(UsageError):
    """A matrix file that cannot be used; the message starts with FILE:LINE: KEY."""


@dataclass(frozen=True)
class Entry:
    """One name of a matrix axis with its parameters, and where each was written."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    where: str | None = None  # "FILE:LINE: KEY" of the name, for messages
    param_where: dict[str, str] = field(default_factory=dict)

    def locate(self, param: str | None = None) -> str:
        if param is not None and param in self.param_where:
            return self.param_where[param]
        return self.where or ""


@dataclass
class MatrixFile:
    path: Path
    methods: list[Entry]
    architectures: list[Entry]
    datasets: list[Entry]
    steps: list[int]  # the T key, which every matrix names
    seeds: list[int] | None = None
    epochs: int | None = None
    executor: Entry | None = None
    jobs: int | None = None


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path

    def at(self, node: yaml.Node, key: str) -> str:
        return f"{self.path}:{node.start_mark.line + 1}: {key}"

    def fail(self, node: yaml.Node, key: str, message: str) -> MatrixFileError:
        return MatrixFileError(f"{self.at(node, key)}: {message}")

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            kind = "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"
            raise self.fail(node, key, f"expected a single value, got {kind}")
        return yaml.SafeLoader("").construct_object(node)

    def value(self, node: yaml.Node, key: str) -> Any:
        """Plain Python for a parameter value (scalars, lists, mappings)."""
        if isinstance(node, yaml.SequenceNode):
            return [self.value(item, f"{key}[{i}]") for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return {k: self.value(v, f"{key}.{k}") for k, _, v in self.pairs(node, key)}
        return self.scalar(node, key)

    def pairs(self, node: yaml.Node, key: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, key, "expected a mapping (NAME: VALUE lines)")
        seen: dict[str, int] = {}
        out = []
        for key_node, value_node in node.value:
            name = self.scalar(key_node, key)
            if not isinstance(name, str):
                raise self.fail(key_node, key, f"keys are names, got {name!r}")
            if name in seen:
                raise self.fail(key_node, f"{key}.{name}" if key else name,
                                f"given twice (first on line {seen[name]})")
            seen[name] = key_node.start_mark.line + 1
            out.append((name, key_node, value_node))
        return out

    def entry_params(self, node: yaml.Node, key: str) -> tuple[dict[str, Any], dict[str, str]]:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return {}, {}
        params, where = {}, {}
        for name, key_node, value_node in self.pairs(node, key):
            params[name] = self.value(value_node, f"{key}.{name}")
            where[name] = self.at(key_node, f"{key}.{name}")
        return params, where

    def entries(self, node: yaml.Node, key: str) -> list[Entry]:
        """`[a, {b: {p: 1}}]`, `{a: null, b: {p: 1}}` or `"a,b"`."""
        if isinstance(node, yaml.ScalarNode):
            text = self.scalar(node, key)
            if not isinstance(text, str) or not text.strip():
                raise self.fail(node, key, f"expected names, got {text!r}")
            return [Entry(n.strip(), where=self.at(node, key)) for n in text.split(",")]
        if isinstance(node, yaml.MappingNode):
            found = []
            for name, key_node, value_node in self.pairs(node, key):
                params, where = self.entry_params(value_node, f"{key}.{name}")
                found.append(Entry(name, params, self.at(key_node, f"{key}.{name}"), where))
            return found
        found = []
        for i, item in enumerate(node.value):
            here = f"{key}[{i}]"
            if isinstance(item, yaml.MappingNode):
                pairs = self.pairs(item, here)
                if len(pairs) != 1:
                    raise self.fail(item, here, "one NAME: {PARAM: VALUE} per list item")
                name, key_node, value_node = pairs[0]
                params, where = self.entry_params(value_node, f"{here}.{name}")
                found.append(Entry(name, params, self.at(key_node, f"{here}.{name}"), where))
            else:
                name = self.scalar(item, here)
                if not isinstance(name, str):
                    raise self.fail(item, here, f"expected a name, got {name!r}")
                found.append(Entry(name, where=self.at(item, here)))
        if not found:
            raise self.fail(node, key, "is empty; name at least one")
        return found

    def integers(self, node: yaml.Node, key: str, minimum: int) -> list[int]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        values = []
        for i, item in enumerate(items):
            here = f"{key}[{i}]" if isinstance(node, yaml.SequenceNode) else key
            value = self.scalar(item, here)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise self.fail(item, here, f"expected an integer >= {minimum}, got {value!r}")
            values.append(value)
        if not values:
            raise self.fail(node, key, "is empty")
        return values


def load_matrix_file(path: Path) -> MatrixFile:
    """Parse `path`; MatrixFileError (exit 2) names the line and key of any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MatrixFileError(f"--matrix {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise MatrixFileError(f"{path}{line}: not valid YAML: {problem}") from None
    if root is None:
        raise MatrixFileError(f"{path}: the file is empty; give at least methods and T")
    reader = _Reader(path)
    sections: dict[str, yaml.Node] = {}
    for name, key_node, value_node in reader.pairs(root, ""):
        canonical = ALIASES.get(name, name)
        if canonical not in TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(name, [*TOP_LEVEL_KEYS, *ALIASES], n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise reader.fail(key_node, name, f"unknown key.{hint} Known keys: "
                              f"{', '.join(TOP_LEVEL_KEYS)}.")
        if canonical in sections:
            raise reader.fail(key_node, name, f"given twice (also as {canonical!r})")
        sections[canonical] = value_node
    for required in ("methods", "T"):
        if required not in sections:
            raise MatrixFileError(f"{path}: key {required!r} is missing; a matrix names at "
                                  "least its methods and T")
    result = MatrixFile(
        path=path,
        methods=reader.entries(sections["methods"], "methods"),
        architectures=(reader.entries(sections["architectures"], "architectures")
                       if "architectures" in sections else []),
        datasets=reader.entries(sections["datasets"], "datasets") if "datasets" in sections
        else [],
        seeds=reader.integers(sections["seeds"], "seeds", 0) if "seeds" in sections else None,
        steps=reader.integers(sections["T"], "T", 1),
    )
    if "epochs" in sections:
        result.epochs = reader.integers(sections["epochs"], "epochs", 0)[0]
    if "executor" in sections:
        result.executor, result.jobs = _executor(reader, sections["executor"])
    return result


def _executor(reader: _Reader, node: yaml.Node) -> tuple[Entry, int | None]:
    if isinstance(node, yaml.ScalarNode):
        name = reader.scalar(node, "executor")
        if not isinstance(name, str):
            raise reader.fail(node, "executor", f"expected an executor name, got {name!r}")
        return Entry(name, where=reader.at(node, "executor")), None
    params, where = reader.entry_params(node, "executor")
    if "name" not in params:
        raise reader.fail(node, "executor", "give its name (executor: {name: slurm, ...})")
    name = params.pop("name")
    name_where = where.pop("name")
    if not isinstance(name, str):
        raise MatrixFileError(f"{name_where}: expected an executor name, got {name!r}")
    jobs = None
    if "jobs" in params:
        jobs = params.pop("jobs")
        jobs_where = where.pop("jobs")
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise MatrixFileError(f"{jobs_where}: expected an integer >= 1, got {jobs!r}")
    return Entry(name, params, name_where, where), jobs
