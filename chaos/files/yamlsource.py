"""YAML parsing that remembers where things were written.

``parse(text)`` returns plain Python values where every mapping is a ``LineDict`` and every
sequence a ``LineList``; both carry the 1-based ``line`` where they start and the line of
each key or item, so the loader can name ``file:line`` in every error. Only the safe YAML
tags are accepted; booleans are YAML 1.2's (``true``/``false`` only: ``on``, ``off``,
``yes``, ``no`` are text). Duplicate keys are an error (PyYAML would silently keep the last one);
a key given next to a merge key (``<<: *defaults``) overrides the merged one, as YAML says.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, SequenceNode


class LineDict(dict[Any, Any]):
    """A mapping from the file: ``line`` of the mapping, ``key_lines[key]`` of each key."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence from the file: ``line`` of the sequence, ``item_lines[i]`` of each item."""

    line: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.item_lines: list[int] = []

    def line_of(self, index: int) -> int:
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


class YamlSyntaxError(Exception):
    """The text is not valid YAML (or uses an unsafe tag); ``line`` is 1-based or None."""

    def __init__(self, line: int | None, problem: str) -> None:
        super().__init__(problem)
        self.line = line
        self.problem = problem


class _LineLoader(yaml.SafeLoader):
    pass


# YAML 1.2's booleans: only true/false. (YAML 1.1's on/off/yes/no would turn a stack file's
# `{on: "1", off: "0"}` into {True: ..., False: ...}.)
_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_map(loader: _LineLoader, node: MappingNode) -> Iterator[LineDict]:
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    yield mapping
    explicit = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)
    merged = len(node.value) - explicit  # the pairs a merge key (<<) brought come first
    from_merge: set[Any] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            )
        if index < merged:
            from_merge.add(key)
        elif key in from_merge:  # an explicit key overrides a merged one (YAML merge keys)
            from_merge.discard(key)
            mapping.key_lines.pop(key, None)
        if key in mapping.key_lines and key in from_merge and index < merged:
            mapping.key_lines.pop(key)  # of two merged sources, the later pair wins
        if key in mapping.key_lines:
            raise ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {mapping.key_lines[key]})",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _LineLoader, node: SequenceNode) -> Iterator[LineList]:
    items = LineList()
    items.line = node.start_mark.line + 1
    yield items
    for item_node in node.value:
        items.append(loader.construct_object(item_node, deep=True))
        items.item_lines.append(item_node.start_mark.line + 1)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def parse(text: str) -> Any:
    """The document in ``text`` (None when empty); ``YamlSyntaxError`` on bad YAML."""
    loader: _LineLoader | None = None
    try:
        loader = _LineLoader(text)
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = err.problem or err.context or "invalid YAML"
        raise YamlSyntaxError(line, f"YAML syntax: {problem}") from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, max(err.position, 0)) + 1
        raise YamlSyntaxError(line, f"YAML syntax: {err.reason}") from None
    except yaml.YAMLError as err:
        raise YamlSyntaxError(1, f"YAML syntax: {err}") from None
    except RecursionError:
        raise YamlSyntaxError(1, "YAML nesting is too deep") from None
    finally:
        if loader is not None:
            loader.dispose()


def dotted(path: Sequence[Any]) -> str:
    """``services.oracle.command[2]`` for the path ``[services, oracle, command, 2]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part != "":
            out += f".{part}" if out else str(part)
    return out


def line_at(document: Any, path: Iterable[Any]) -> int:
    """The line of the deepest key or item of ``path`` that exists in ``document``."""
    node = document
    line = getattr(document, "line", 1) or 1
    for part in path:
        if (isinstance(node, LineDict) and part in node) or (
            isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node)
        ):
            line = node.line_of(part)
            node = node[part]
        else:
            break
    return line
