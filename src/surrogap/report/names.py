"""How a name read from a table (a dataset, an external representation) enters the report:
as Markdown text (:func:`md_text`) and as part of a figure's file name (:func:`file_name`)."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_MD_ESCAPES = str.maketrans(
    {"\\": "\\\\", "|": "\\|", "`": "\\`", "[": "\\[", "]": "\\]", "<": "&lt;", ">": "&gt;",
     "\n": " ", "\r": " "}
)  # fmt: skip


def file_name(name: str) -> str:
    """`name` with every run of characters other than letters, digits, `_.-` as one `-`."""
    return _UNSAFE.sub("-", name).strip("-") or "unnamed"


def md_text(name: str) -> str:
    """A name from a table as Markdown text: |, backticks, brackets and backslashes escaped,
    < and > as entities, a line break as a space (it can break no table, heading or link)."""
    return str(name).translate(_MD_ESCAPES)
