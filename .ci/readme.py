#!/usr/bin/env python
"""Write README.md from nbs/index.ipynb without Quarto (nbdev_readme needs the Quarto CLI).

    python .ci/readme.py          # write README.md and its figures (index_files/)
    python .ci/readme.py --check  # exit 1 if README.md or its figures are out of date

Hidden cells (`#| hide`) are dropped, `#|` directives are stripped, `#| echo: false` hides the code,
saved outputs are kept: text in fenced blocks, PNG figures as files under index_files/.
"""
import base64, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NB, README, FIGS = ROOT/"nbs"/"index.ipynb", ROOT/"README.md", "index_files/figure-commonmark"
_directive = re.compile(r"^\s*#\s*\|\s*(.*)$")


def _src(cell): return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _split_directives(source):
    "Directive lines at the top of a cell, and the rest of its source."
    lines, dirs = source.splitlines(), []
    while lines and _directive.match(lines[0]): dirs.append(_directive.match(lines.pop(0)).group(1).strip())
    return dirs, "\n".join(lines).strip("\n")


def _text(x): return "".join(x) if isinstance(x, list) else x


def render(nb):
    "Markdown text of the README and the figures it refers to, as {relative path: bytes}."
    parts, figures = [], {}
    for i, cell in enumerate(nb["cells"]):
        dirs, body = _split_directives(_src(cell))
        if any(d in ("hide", "hide_input: true", "include: false") or d.startswith("export") for d in dirs): continue
        if cell["cell_type"] == "markdown":
            if body: parts.append(body)
            continue
        if cell["cell_type"] != "code": continue
        if body and "echo: false" not in dirs: parts.append(f"```python\n{body}\n```")
        if "output: false" in dirs: continue
        for j, out in enumerate(cell.get("outputs", [])):
            data = out.get("data", {})
            if out.get("output_type") == "stream": parts.append("```\n" + _text(out["text"]).rstrip() + "\n```")
            elif "image/png" in data:
                name = f"{FIGS}/cell-{i}-output-{j}.png"
                figures[name] = base64.b64decode(_text(data["image/png"]))
                parts.append(f"![]({name})")
            elif "text/markdown" in data: parts.append(_text(data["text/markdown"]).strip())
            elif "text/plain" in data: parts.append("```\n" + _text(data["text/plain"]).rstrip() + "\n```")
    note = "<!-- Generated from nbs/index.ipynb by .ci/readme.py: edit the notebook, not this file. -->"
    return note + "\n\n" + "\n\n".join(parts) + "\n", figures


def main(check=False):
    text, figures = render(json.loads(NB.read_text(encoding="utf-8")))
    stale = [] if README.exists() and README.read_text(encoding="utf-8") == text else ["README.md"]
    stale += [p for p, b in figures.items() if not (ROOT/p).exists() or (ROOT/p).read_bytes() != b]
    old = {str(p.relative_to(ROOT)) for p in (ROOT/FIGS).glob("*.png")} - set(figures)
    if check:
        if stale or old: print("README out of date with nbs/index.ipynb:", *(stale + sorted(old)), "\nrun: python .ci/readme.py")
        return 1 if stale or old else 0
    for p in old: (ROOT/p).unlink()
    for p, b in figures.items(): (ROOT/p).parent.mkdir(parents=True, exist_ok=True); (ROOT/p).write_bytes(b)
    README.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__": sys.exit(main(check="--check" in sys.argv[1:]))
