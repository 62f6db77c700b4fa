"""What `goalpost source test` found for one stream: shared by file and REST sources."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StreamCheck:
    """What `source test` found for one stream, without writing anything."""

    source: str
    stream: str
    ok: bool
    files: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    dialect: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    sample_rows: int = 0
    sample_rejected: int = 0
    rejected_examples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def dialect_summary(self) -> str:
        d = self.dialect
        if not d:
            return "unknown"
        delimiter = {"\t": "tab"}.get(d.get("delimiter", ""), d.get("delimiter", ""))
        dates = ", ".join(f"{k} {v['python']}" for k, v in d.get("date_formats", {}).items())
        parts = [d.get("format", "?")]
        if d.get("format") == "csv":
            parts += [f"delimiter {delimiter!r}", d.get("encoding", "?")]
        parts.append(f"decimal {d.get('decimal', '.')!r}")
        if dates:
            parts.append(f"dates {dates}")
        return ", ".join(parts)
