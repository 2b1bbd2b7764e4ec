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


# ---- What a reader sees: every rendered page, checked for the slips that a glance at the site shows ----
from html.parser import HTMLParser
import re
from urllib.parse import unquote, urlsplit

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
RAW_MATH = re.compile(r"\$\$|\\\[|\\\]|\\begin\{(?:aligned|align|equation)")
PROGRESS = re.compile(r"\d+(?:\.\d+)?\s*(?:it/s|s/it)\]|\d+%\|")  # tqdm frames: '12.3it/s]', ' 45%|'
REPR = re.compile(r"<torch\.autograd[^>]*>|<All keys matched successfully>|<matplotlib\.[^>]*>|<Figure size [^>]*>"
                  r"|<Axes: [^>]*>|<[\w.]+ object at 0x[0-9a-f]+>")


class Page(HTMLParser):
    """One rendered page: its links, ids, sidebar links, text outside math and code, and the text of cell outputs.

    smalldocs (like Quarto) puts math in `<span class="math inline|display">`, code in `<pre>`/`<code>`, outputs in
    `<div class="cell-output ...">` and the sidebar in `<nav id="quarto-sidebar">`.
    """
    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.stack, self.links, self.ids, self.sidebar = [], [], set(), []
        self.prose, self.outputs = [], []
        self.feed(text); self.close()

    def _inside(self, test): return any(test(tag, attrs) for tag, attrs in self.stack)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs: self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"): self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key): self.links.append(attrs[key])
        if tag == "a" and "sidebar-link" in (attrs.get("class") or "") and self._inside(
                lambda t, a: a.get("id") == "quarto-sidebar"):
            self.sidebar.append(attrs.get("href"))
        if tag not in VOID: self.stack.append((tag, attrs))

    def handle_startendtag(self, tag, attrs): self.handle_starttag(tag, attrs); self.stack.pop() if tag not in VOID else None

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):  # tolerate unclosed tags: pop back to the matching one
            if self.stack[i][0] == tag: del self.stack[i:]; break

    def handle_data(self, data):
        if self._inside(lambda t, a: t in ("script", "style")): return
        if self._inside(lambda t, a: "cell-output" in (a.get("class") or "")): self.outputs.append(data)
        if not self._inside(lambda t, a: t in ("pre", "code") or "math" in (a.get("class") or "").split()):
            self.prose.append(data)


@pytest.fixture(scope="module")
def site(proc):
    "The offline render of the site: {page path relative to _docs: parsed Page}."
    r = subprocess.run([sys.executable, "-m", "smalldocs.cli", "render", str(proc)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    docs = proc/"_docs"
    return docs, {str(p.relative_to(docs)): Page(p.read_text()) for p in sorted(docs.rglob("*.html"))}


def _pages_of_notebooks(docs):
    return {str(Path(nb).with_suffix(".html")) for nb in notebooks()}


def _found(problems):
    return "\n".join(f"{page}: {what}" for page, what in problems)


def _snippet(text, m, width=60):
    return " ".join(text[max(0, m.start() - width):m.end() + width].split())


def test_site_pages_have_no_broken_local_link(site):
    docs, pages = site
    broken = []
    for name, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "data:", "javascript:")): continue
            target = (docs/name).parent/unquote(parts.path) if parts.path else docs/name
            if target.is_dir(): target = target/"index.html"
            if not target.exists():
                broken.append((name, f"{link} (no file {target.relative_to(docs) if target.is_relative_to(docs) else target})"))
            elif parts.fragment and target.suffix == ".html":
                ids = pages[str(target.resolve().relative_to(docs.resolve()))].ids
                if unquote(parts.fragment) not in ids: broken.append((name, f"{link} (no anchor #{parts.fragment})"))
    assert not broken, "broken local links:\n" + _found(broken)


def test_site_math_is_rendered_as_math(site):
    "A display equation whose `$$` or `\\[` shows as text (outside the math elements) did not render."
    _, pages = site
    raw = []
    for name, page in pages.items():
        text = "".join(page.prose)
        hits = list(RAW_MATH.finditer(text))
        raw += [(name, f"{len(hits)} raw delimiter(s), e.g. " + " | ".join(_snippet(text, m, 40) for m in hits[:3]))] if hits else []
    assert not raw, "raw display-math delimiters outside math elements:\n" + _found(raw)


def test_site_outputs_have_no_progress_bars_or_object_reprs(site):
    _, pages = site
    found = []
    for name, page in pages.items():
        text = "".join(page.outputs)
        bars = PROGRESS.findall(text)
        if bars: found.append((name, f"{len(bars)} progress-bar frame(s), e.g. {bars[0]!r}"))
        found += [(name, f"object repr {m.group(0)!r}") for m in REPR.finditer(text)]
    assert not found, "progress bars or stray reprs in saved outputs:\n" + _found(found)


def test_site_sidebar_lists_every_notebook_page(site):
    "Every page's sidebar links to the page of every notebook (and to nothing else that is missing)."
    docs, pages = site
    expected, problems = _pages_of_notebooks(docs), []
    for name, page in pages.items():
        linked = {str(((docs/name).parent/urlsplit(h).path).resolve().relative_to(docs.resolve()))
                  for h in page.sidebar if h}
        if missing := expected - linked: problems.append((name, f"sidebar lacks {sorted(missing)}"))
    missing_pages = [p for p in expected if p not in pages]
    assert not missing_pages and not problems, f"no page for {missing_pages}\n" + _found(problems)


def test_site_checks_can_fail():
    "The parser and patterns above flag each slip they are meant to, and nothing in math, code or prose."
    page = Page('<nav id="quarto-sidebar"><a class="sidebar-link" href="a.html">A</a></nav>'
                '<p>raw $$x$$ and <span class="math display">\\[y\\]</span></p><pre><code>s = "$$"</code></pre>'
                '<div class="cell-output cell-output-stderr"><pre><code> 45%|####  | 9/20 [00:01&lt;00:01, 8.1it/s]'
                '&lt;torch.autograd.grad_mode.set_grad_enabled at 0x7f&gt; &lt;Figure size 640x480 with 1 Axes&gt;'
                '&lt;All keys matched successfully&gt;</code></pre></div><p>100% of it/s is prose</p>')
    assert page.sidebar == ["a.html"] and "a.html" in page.links
    assert [m.group(0) for m in RAW_MATH.finditer("".join(page.prose))] == ["$$", "$$"]
    out = "".join(page.outputs)
    assert PROGRESS.findall(out) == ["45%|", "8.1it/s]"] and not PROGRESS.findall("".join(page.prose))
    assert len(REPR.findall(out)) == 3
