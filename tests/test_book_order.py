"""Book order is dependency order: no chapter's module imports a module written by a later chapter.

The order is the sidebar's. The two namespace modules (`vnn_nbdev/__init__.py`, written by the home page, and
`vnn_nbdev/bnn/__init__.py`, written by the appendix) gather names from every chapter by design and are exempt.
Imports inside functions count too: a later module imported lazily is still a forward reference.
"""
import ast, re
from pathlib import Path

import yaml

from test_docs import sidebar_entries

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT/"vnn_nbdev"
NAMESPACES = {"vnn_nbdev", "vnn_nbdev.bnn"}


def sidebar_order():
    side = yaml.safe_load((ROOT/"nbs"/"sidebar.yml").read_text())
    return list(sidebar_entries(side["website"]["sidebar"]["contents"]))


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_notebook(path):
    m = re.search(r"File to edit: ([^\s]+\.ipynb)", path.read_text())
    return str((path.parent/m.group(1)).resolve().relative_to((ROOT/"nbs").resolve())) if m else None


def imported_modules(path, name):
    "Package modules imported anywhere in the file (relative or absolute)."
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[:len(pkg.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else: mod = node.module or ""
            for alias in node.names: out.add(f"{mod}.{alias.name}"); out.add(mod)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("vnn_nbdev")}


def test_no_chapter_imports_a_later_one():
    order = {nb: i for i, nb in enumerate(sidebar_order())}
    files = {module_name(p): p for p in LIB.rglob("*.py") if not p.name.startswith("_modidx")}
    chapter = {m: source_notebook(p) for m, p in files.items()}
    assert all(nb in order for nb in chapter.values() if nb), "a module's notebook is missing from the sidebar"
    bad = []
    for m, p in files.items():
        if m in NAMESPACES or not chapter[m]: continue
        for dep in imported_modules(p, m):
            if dep in chapter and chapter[dep] and dep not in NAMESPACES | {m}:
                if order[chapter[dep]] > order[chapter[m]]:
                    bad.append(f"{m} ({chapter[m]}) imports {dep} ({chapter[dep]})")
    assert not bad, "\n".join(sorted(bad))
