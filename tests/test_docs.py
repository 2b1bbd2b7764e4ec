"""The docs pipeline up to Quarto: _proc/ from nbdev's Python API, the sidebar, and an offline render.

Quarto cannot be installed here, so the HTML render uses smalldocs, which reads the same _quarto.yml.
It does not run Quarto's filters (callouts, cross-references, `keep-md`, KaTeX are approximated or
ignored), so it checks structure and links, not the final look.
"""
import os, shutil, subprocess, sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT/"nbs"


def notebooks():
    "Every notebook of the book, relative to nbs/."
    return sorted(str(p.relative_to(NBS)) for p in NBS.rglob("*.ipynb")
                  if not any(part.startswith((".", "_")) for part in p.relative_to(NBS).parts))


def sidebar_entries(node):
    if isinstance(node, str): yield node
    elif isinstance(node, list):
        for x in node: yield from sidebar_entries(x)
    elif isinstance(node, dict):
        if "href" in node: yield node["href"]
        yield from sidebar_entries(node.get("contents", []))


def test_quarto_yml_is_single_source():
    link = NBS/"_quarto.yml"
    assert link.is_symlink() and link.resolve() == (ROOT/"_quarto.yml").resolve()
    cfg = yaml.safe_load((ROOT/"_quarto.yml").read_text())
    assert cfg["project"]["output-dir"] == "_docs"
    assert {"navbar", "sidebar"} <= set(cfg["website"])


def test_sidebar_lists_every_notebook_once():
    side = yaml.safe_load((NBS/"sidebar.yml").read_text())
    entries = list(sidebar_entries(side["website"]["sidebar"]["contents"]))
    assert len(entries) == len(set(entries)), "a notebook is listed twice"
    assert sorted(entries) == notebooks()
    sections = [x["section"] for x in side["website"]["sidebar"]["contents"] if isinstance(x, dict)]
    assert sections == ["Getting started", "Components", "Theory", "Appendix"]


@pytest.fixture(scope="module")
def proc(tmp_path_factory):
    "A copy of the project with _proc/ made by nbdev's Python API (no Quarto, no sudo)."
    dst = tmp_path_factory.mktemp("site")/"project"
    shutil.copytree(ROOT, dst, symlinks=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "_proc", "_docs", "__pycache__", "*.egg-info"))
    code = ("from nbdev.quarto import refresh_quarto_yml\n"
            "from nbdev.serve import proc_nbs\n"
            "refresh_quarto_yml(); proc_nbs(n_workers=0)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=dst, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(dst)})
    assert r.returncode == 0, r.stdout + r.stderr
    return dst/"_proc"


def test_proc_has_every_notebook(proc):
    assert (proc/"_quarto.yml").is_file() and (proc/"sidebar.yml").is_file() and (proc/"nbdev.yml").is_file()
    missing = [nb for nb in notebooks() if not (proc/nb).is_file()]
    assert not missing, f"not processed: {missing}"


def test_offline_render_has_a_page_per_notebook_and_no_broken_link(proc):
    smalldocs = [sys.executable, "-m", "smalldocs.cli"]
    r = subprocess.run(smalldocs + ["render", str(proc)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    site = proc/"_docs"
    missing = [nb for nb in notebooks() if not (site/nb).with_suffix(".html").is_file()]
    assert not missing, f"no page for: {missing}"
    r = subprocess.run(smalldocs + ["check", str(proc)], capture_output=True, text=True)
    broken = [line for line in (r.stdout + r.stderr).splitlines() if "broken link" in line]
    assert not broken, "\n".join(broken)
