"A wheel built from the checkout installs into a fresh venv, and every module imports from outside the repo."
import configparser, os, shlex, subprocess, sys, venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*cmd, cwd=None, env=None):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, ROOT)  # build isolation on
    wheels = list(out.glob("vnn_nbdev-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def package_modules():
    lib = ROOT/"vnn_nbdev"
    return sorted("vnn_nbdev." + ".".join(p.relative_to(lib).with_suffix("").parts)
                  for p in lib.rglob("*.py") if p.name != "__init__.py")


def test_wheel_installs_and_every_module_imports(wheel, tmp_path):
    env_dir = tmp_path/"venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir/"bin"/"python"
    # The dependencies (torch, sklearn, ...) come from this test's environment, so that the check
    # downloads nothing: its site-packages is put on the fresh venv's path, after the venv's own.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    purelib = run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    Path(purelib, "_deps_from_test_env.pth").write_text(site + "\n")
    run(py, "-m", "pip", "install", "-q", "--no-deps", wheel)
    modules = package_modules()
    code = ("import importlib, vnn_nbdev, sys\n"
            f"mods = {modules!r}\n"
            "for m in mods: importlib.import_module(m)\n"
            "print(vnn_nbdev.__file__); print(vnn_nbdev.__version__)\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = run(py, "-c", code, cwd=tmp_path, env=env).split()
    assert out[0].startswith(str(env_dir)), f"imported {out[0]}, not the installed wheel"
    cfg = configparser.ConfigParser(); cfg.read(ROOT/"settings.ini")
    assert out[1] == cfg["DEFAULT"]["version"]


def test_wheel_metadata_matches_settings(wheel):
    import zipfile
    cfg = configparser.ConfigParser(); cfg.read(ROOT/"settings.ini")
    with zipfile.ZipFile(wheel) as z:
        meta = next(z.read(n).decode() for n in z.namelist() if n.endswith("METADATA"))
        names = z.namelist()
    requires = [l.split(": ", 1)[1] for l in meta.splitlines() if l.startswith("Requires-Dist:") and "extra ==" not in l]
    def name(req): return req.split(">")[0].split("<")[0].split("=")[0].strip().lower()
    assert sorted(map(name, requires)) == sorted(map(name, shlex.split(cfg["DEFAULT"]["requirements"])))
    assert not any(n.startswith(("nbs/", "tests/", "bench/")) for n in names)
    assert "vnn_nbdev/_modidx.py" in names


def test_every_module_compiles_without_warnings():
    "Invalid escape sequences (e.g. LaTeX in a notebook's description, which becomes the module docstring) warn."
    import warnings
    for path in sorted((ROOT/"vnn_nbdev").rglob("*.py")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
