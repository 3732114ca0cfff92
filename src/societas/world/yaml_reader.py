r"""YAML with line numbers: plain data plus the line of every field path, for error messages.

Scenario and experiment files both read through :func:`read_yaml`, so a bad field is reported
as ``file:line: path: problem`` wherever it is. Only true/false are booleans (``state: off``
stays text) and times stay text for pydantic to parse.

>>> data, reader = read_yaml("name: Alder Creek\nagents:\n  - name: Rosa\n", "town.yaml")
>>> data["agents"][0]["name"], reader.line_of(("agents", 0, "name"))
('Rosa', 3)
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from societas.world.errors import FieldPath, Issue, ScenarioError

_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MAX_NODES = 200_000


class _Loader(yaml.SafeLoader):
    """Safe YAML where only true/false are booleans (``state: off`` stays text) and times stay
    text for pydantic to parse."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class YamlReader:
    """Builds plain data from a YAML node tree, remembering the line of every field path."""

    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.lines: dict[FieldPath, int] = {}
        self.budget = _MAX_NODES
        self.open_nodes: set[int] = set()

    def build(self, node: yaml.Node, path: FieldPath) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise ScenarioError([Issue(path, "the document is too large")])
        if id(node) in self.open_nodes:
            raise ScenarioError([Issue(path, "an alias refers to its own ancestor")])
        if isinstance(node, yaml.MappingNode):
            return self.guarded(node, lambda: self.mapping(node, path))
        if isinstance(node, yaml.SequenceNode):
            return self.guarded(node, lambda: self.sequence(node, path))
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as error:
            problem = getattr(error, "problem", None) or str(error)
            raise ScenarioError([Issue(path, f"invalid value: {problem}", _line(node))]) from None

    def guarded(self, node: yaml.Node, build: Any) -> Any:
        self.open_nodes.add(id(node))
        try:
            return build()
        finally:
            self.open_nodes.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: FieldPath) -> dict[str, Any]:
        explicit = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
        self.loader.flatten_mapping(node)  # resolves "<<" merge keys, placing them first
        merged = len(node.value) - explicit
        result: dict[str, Any] = {}
        written: set[str] = set()  # keys written in this mapping itself (merged ones may repeat)
        for position, (key_node, value_node) in enumerate(node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                issue = Issue(path, "mapping keys must be plain text", _line(key_node))
                raise ScenarioError([issue])
            key = str(key_node.value)
            child = (*path, key)
            if key in written:
                raise ScenarioError([Issue(child, f"duplicate key {key!r}", _line(key_node))])
            if position >= merged:
                written.add(key)
            self.lines[child] = _line(key_node)
            result[key] = self.build(value_node, child)
        return result

    def sequence(self, node: yaml.SequenceNode, path: FieldPath) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            self.lines[(*path, index)] = _line(item)
            items.append(self.build(item, (*path, index)))
        return items

    def line_of(self, path: FieldPath) -> int | None:
        """Line of the field, else of its nearest enclosing field that is in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def read_yaml(text: str, source: str) -> tuple[Any, YamlReader]:
    try:
        loader = _Loader(text)  # refuses control characters at once
    except yaml.reader.ReaderError as error:
        raise ScenarioError([_unprintable(error, text)], source) from None
    reader = YamlReader(loader)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError([Issue((), "the file is empty")], source)
        reader.lines[()] = _line(node)
        return reader.build(node, ()), reader
    except ScenarioError as error:
        raise error.located(source, reader.line_of) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        problem = error.problem or error.context or "malformed"
        raise ScenarioError([Issue((), f"invalid YAML: {problem}", line)], source) from None
    except yaml.YAMLError as error:
        message = " ".join(str(error).split())
        raise ScenarioError([Issue((), f"invalid YAML: {message}")], source) from None
    except RecursionError:
        raise ScenarioError([Issue((), "invalid YAML: nested too deeply")], source) from None
    finally:
        loader.dispose()


def _unprintable(error: yaml.reader.ReaderError, text: str) -> Issue:
    character = error.character
    shown = f"U+{character:04X}" if isinstance(character, int) else repr(character)
    line = text.count("\n", 0, max(0, error.position)) + 1
    return Issue((), f"invalid YAML: character {shown} is not allowed ({error.reason})", line)
