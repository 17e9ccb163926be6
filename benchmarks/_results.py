"""Where a benchmark's results go: printed, then written to its markdown file atomically (a temporary file
beside it, then renamed), so a run that is stopped or fails leaves the previous results whole."""

from __future__ import annotations

from pathlib import Path


def write_results(text: str, path: Path) -> None:
    print(text)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
