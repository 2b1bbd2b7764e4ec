"""The book's shape, measured: export-cell sizes per notebook and public definitions without a docstring.

    python .ci/book_stats.py                 # the table and the list
    python .ci/book_stats.py --check         # exit 1 if an export cell is over 40 lines, the median is over 12,
                                             # or a public definition has no docstring
    python .ci/book_stats.py --nb nbs/05_layers.ipynb --module vnn_nbdev.layers   # one chapter while you work

A cell's size is its count of non-blank lines that are not `#|` directives.
"""
import argparse, glob, importlib, inspect, json, pkgutil, statistics, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPORT = ("#|export", "#|exporti", "#|exports")


def export_cell_sizes(nb_path):
    "Sizes of the export cells of one notebook, with their indices."
    out = []
    for i, c in enumerate(json.load(open(nb_path))["cells"]):
        if c["cell_type"] != "code": continue
        src = "".join(c["source"]).splitlines()
        if any(l.replace(" ", "").startswith(EXPORT) for l in src[:4]):
            out.append((i, sum(1 for l in src if l.strip() and not l.strip().startswith("#|"))))
    return out


def undocumented(modules):
    "Public functions, classes and methods defined in `modules` without a docstring of their own."
    missing = []
    for name in modules:
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__: continue
            if not (inspect.isfunction(obj) or inspect.isclass(obj)): continue
            if not inspect.getdoc(obj): missing.append(f"{name}.{attr}")
            if inspect.isclass(obj):
                for m, f in vars(obj).items():
                    f = getattr(f, "fget", getattr(f, "__func__", f))
                    if not m.startswith("_") and inspect.isfunction(f) and not f.__doc__:
                        missing.append(f"{name}.{attr}.{m}")
    return missing


def all_modules(package="vnn_nbdev"):
    pkg = importlib.import_module(package)
    return [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, package + ".")]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--check", action="store_true")
    p.add_argument("--nb", nargs="*", default=None)
    p.add_argument("--module", nargs="*", default=None)
    a = p.parse_args()
    nbs = a.nb or sorted(glob.glob(str(ROOT/"nbs/**/*.ipynb"), recursive=True))
    sizes, bad = [], []
    for nb in [str(Path(n).resolve()) for n in nbs]:
        s = export_cell_sizes(nb)
        if not s: continue
        n = [x for _, x in s]; sizes += n
        over = [f"cell {i}: {x}" for i, x in s if x > 40]
        bad += [f"{Path(nb).relative_to(ROOT)} {o}" for o in over]
        print(f"{str(Path(nb).relative_to(ROOT)):40s} cells={len(n):3d} median={statistics.median(n):5.1f} "
              f"max={max(n):3d} over40={len(over)}")
    med = statistics.median(sizes) if sizes else 0
    print(f"ALL export cells={len(sizes)} median={med} max={max(sizes, default=0)} over40={len(bad)}")
    missing = undocumented(a.module or all_modules())
    print(f"undocumented public definitions: {len(missing)}")
    for m in missing: print("  ", m)
    for b in bad: print("  over 40 lines:", b)
    if a.check and (bad or missing or med > 12): sys.exit(1)


if __name__ == "__main__": main()
