"""Pieces of docs/forking.md: its commands and its fenced code blocks."""

from __future__ import annotations

from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "forking.md"


def guide_commands(prefix: str) -> list[str]:
    """Lines of the guide that start with ``prefix``."""
    return [line for line in GUIDE.read_text().splitlines() if line.startswith(prefix)]


def guide_block(language: str, after: str) -> str:
    """The first fenced ``language`` block of the guide after the line ``after``."""
    text = GUIDE.read_text()
    start = text.index(f"```{language}\n", text.index(after)) + len(language) + 4
    return text[start : text.index("```", start)]
