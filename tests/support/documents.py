"""Walking parsed YAML/JSON documents, for tests that break a file one field at a time."""

from __future__ import annotations

from typing import Any

FieldPath = tuple[str | int, ...]


def field_paths(node: Any, prefix: FieldPath = ()) -> list[FieldPath]:
    """Every field path of a document, the root (``()``) first, then depth first."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += field_paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += field_paths(child, (*prefix, index))
    return found
