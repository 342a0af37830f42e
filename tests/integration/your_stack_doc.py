"""The commands of docs/your-stack.md: its ``sh`` fenced blocks, in order."""

from __future__ import annotations

import re

_BLOCK = re.compile(r"^```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def sh_blocks(markdown: str) -> list[str]:
    """The text of every ```sh block, in the order written."""
    return [m.group(1) for m in _BLOCK.finditer(markdown)]
