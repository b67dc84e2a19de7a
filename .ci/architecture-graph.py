#!/usr/bin/env python3
"""Draws the folder graph of docs/architecture.md from its include table.

The rules table (between the include-check:rules markers) says which folders each folder may
include. This script turns it into a Mermaid graph (an arrow from a folder to each folder it stands
on, transitive arrows left out so the picture shows the layers) and writes it between the
architecture-graph markers of the same file. With --check it only compares and exits 1 when the
picture is stale, so the drawing can never drift from the rules.

    python3 .ci/architecture-graph.py          # rewrite the picture
    python3 .ci/architecture-graph.py --check  # CI: exit 1 if it differs
"""
import re
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
BEGIN, END = "<!-- architecture-graph -->", "<!-- /architecture-graph -->"


def rules(text):
    block = text.split("<!-- include-check:rules -->", 1)[1].split("<!-- /include-check:rules -->", 1)[0]
    deps = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        folder = cells[0].strip("`").rstrip("/")
        deps[folder] = [d.strip("` ") for d in re.split(r",", cells[2]) if d.strip("` ") not in ("", "—", "-")]
    return deps


def reduce(deps):
    """Drops a->c when a->b->...->c: the arrows that remain draw the layers."""
    def reach(a, seen):
        for b in deps.get(a, []):
            if b not in seen:
                seen.add(b)
                reach(b, seen)
        return seen
    out = {}
    for a, ds in deps.items():
        keep = []
        for c in ds:
            via = any(c in reach(b, set()) for b in ds if b != c)
            if not via:
                keep.append(c)
        out[a] = keep
    return out


def picture(deps):
    lines = ["```mermaid", "graph BT"]
    for a in deps:  # table order: the data's order
        for b in reduce(deps)[a]:
            lines.append(f"  {a.replace('/', '_')}[{a}/] --> {b.replace('/', '_')}[{b}/]")
    lonely = [a for a in deps if not deps[a] and not any(a in ds for ds in deps.values())]
    for a in lonely:
        lines.append(f"  {a.replace('/', '_')}[{a}/]")
    lines.append("```")
    return "\n".join(lines)


def main():
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"{DOC}: no {BEGIN} ... {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + BEGIN + "\n" + picture(rules(text)) + "\n" + END + tail
    if "--check" in sys.argv[1:]:
        if new != text:
            sys.exit("docs/architecture.md: the folder graph is stale; run python3 .ci/architecture-graph.py")
        print("architecture-graph: the picture matches the include table")
        return
    DOC.write_text(new)


if __name__ == "__main__":
    main()
