"""Refresh a notebook's saved outputs: run it top to bottom as `nbdev_test` does (from its folder) and save.

    python .ci/execute_nb.py nbs/05_layers.ipynb [more.ipynb ...]

Cells marked `slow` or `notest` (or `#| eval: false`) are not run and keep the outputs they had, so a long
demonstration's saved figure survives. Progress bars are switched off (TQDM_DISABLE), so no bar frames are saved.
Run `nbdev_clean` afterwards.
"""
import os, sys
from pathlib import Path

os.environ["TQDM_DISABLE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
from nbdev.process import NBProcessor
from nbdev.frontmatter import FrontmatterProc

SKIP = {"slow", "notest"}


def _skip(cell):
    if cell.cell_type != "code": return True
    d = getattr(cell, "directives_", {}) or {}
    if d.get("eval:", [""])[0].lower() == "false": return True
    return bool(SKIP & d.keys())


def execute(path):
    path = Path(path).resolve()
    nb = NBProcessor(path, procs=FrontmatterProc, process=True).nb   # parses the directives, as nbdev_test does
    for cell in nb.cells:                    # a cell that prints nothing now must not keep what it printed before
        if not _skip(cell): cell.outputs = []
    shell = CaptureShell(path)
    with working_directory(path.parent):
        shell.run_all(nb, exc_stop=True, preproc=_skip)
    raw = read_nb(path)
    for cell, done in zip(raw.cells, nb.cells):
        if cell.cell_type == "code" and not _skip(done):
            cell.outputs, cell.execution_count = done.outputs, done.get("execution_count")
    write_nb(raw, path)
    print("executed and saved", path)


if __name__ == "__main__":
    for p in sys.argv[1:]: execute(p)
