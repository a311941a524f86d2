"""The one HTML page of every table and card the report shows: inline style only, so a page needs nothing from the
network."""

import html

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 72em; margin: 1em auto;
       padding: 0 1em; line-height: 1.4; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 0.6em 0; }
h2 { font-size: 1.2em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.6em 0 1em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }
th { background: #f2f2f2; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.highlight td { background: #fde8e8; font-weight: bold; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; font-size: 0.9em; }
dt { color: #666; }
dd { margin: 0; }
code, pre { background: #f6f6f6; font-size: 0.92em; }
pre { padding: 0.6em; overflow-x: auto; }
"""


def html_page(title: str, body: str, heading: bool = True) -> str:
    """A complete page; ``heading`` shows the title as its first heading (a body that brings its own says False)."""
    top = f"<h1>{html.escape(title)}</h1>\n" if heading else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{top}{body}\n</body>\n</html>\n"
    )
