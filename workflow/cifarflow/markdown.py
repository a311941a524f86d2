"""Markdown shared by the documents the study writes: the model card and the exported model's README."""


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown (GitHub) table; ``align`` holds one of l/r per column."""
    def cell(value) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
