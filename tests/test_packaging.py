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


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    "A fresh venv with the wheel installed; returns (python, bin folder, a working folder outside the repo, env)."
    tmp_path = tmp_path_factory.mktemp("installed")
    env_dir = tmp_path/"venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir/"bin"/"python"
    # The dependencies (torch, sklearn, ...) come from this test's environment, so that the check
    # downloads nothing: its site-packages is put on the fresh venv's path, after the venv's own.
    site = next(p for p in sys.path if p.endswith("site-packages"))
    purelib = run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    Path(purelib, "_deps_from_test_env.pth").write_text(site + "\n")
    run(py, "-m", "pip", "install", "-q", "--no-deps", wheel)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = tmp_path/"work"; work.mkdir()
    return py, env_dir/"bin", work, env


def test_wheel_installs_and_every_module_imports(installed):
    py, _, work, env = installed
    modules = package_modules()
    code = ("import importlib, vnn_nbdev, sys\n"
            f"mods = {modules!r}\n"
            "for m in mods: importlib.import_module(m)\n"
            "print(vnn_nbdev.__file__); print(vnn_nbdev.__version__)\n")
    out = run(py, "-c", code, cwd=work, env=env).split()
    assert out[0].startswith(str(py.parent.parent)), f"imported {out[0]}, not the installed wheel"
    cfg = configparser.ConfigParser(); cfg.read(ROOT/"settings.ini")
    assert out[1] == cfg["DEFAULT"]["version"]


# Calls, not imports: the notebook namespace can hide a name a module uses but never imports (an import made in
# a test cell), and only code run from the installed package, in a fresh process, finds it.
ENTRY_POINTS = """
import json, math, torch
from torch import nn
import vnn_nbdev as inferno
from vnn_nbdev import bnn, loss_fns
from vnn_nbdev.data import two_moons, dataloaders
from vnn_nbdev.training import fit
from vnn_nbdev.metrics import evaluate
from vnn_nbdev.viz import plot_decision_boundary

torch.manual_seed(0)
model = bnn.Sequential(                      # the reference tutorial's model, only the import changed
    inferno.models.MLP(in_size=2, hidden_sizes=[16] * 2, out_size=1, activation_layer=nn.SiLU,
                       cov=[bnn.params.FactorizedCovariance()] + [None] + [bnn.params.FactorizedCovariance()]),
    nn.Flatten(-2, -1), parametrization=bnn.params.MUP())
data = two_moons(num_train_data=64, num_test_data=64, seed=0)
train, test = dataloaders(data, batch_size=32)
assert model(data.X_test[:5], sample_shape=(4,)).shape == (4, 5)
history = fit(model, train, loss_fns.BCEWithLogitsLoss(), optimizer=1e-2, epochs=1, progress=False)
metrics = evaluate(model, test, num_samples=8)
assert 0 <= metrics["accuracy"] <= 1 and math.isfinite(metrics["nll"])
for Objective in (loss_fns.NegativeELBO, loss_fns.VariationalFreeEnergy):
    objective = Objective(model, num_data=64, loss_fn=loss_fns.BCEWithLogitsLoss())
    objective(model(data.X_train[:8], sample_shape=(2,)), data.y_train[:8]).backward()
plot_decision_boundary(model, data.X_test, data.y_test, num_samples=4, grid_size=20)
print(json.dumps({"ok": True, "epochs": history.num_epochs}))
"""


def test_installed_entry_points_run_in_a_fresh_process(installed):
    py, _, work, env = installed
    out = run(py, "-c", ENTRY_POINTS, cwd=work, env={**env, "MPLBACKEND": "Agg"})
    assert out.strip().splitlines()[-1] == '{"ok": true, "epochs": 1}'


def test_installed_console_script_runs(installed):
    _, bin_dir, work, env = installed
    out = run(bin_dir/"vnn_two_moons", "--outdir", work/"run", "--num_train_data", "40", "--num_test_data", "40",
              "--num_epochs", "1", "--hidden_width", "8", "--num_hidden_layers", "1", "--grid_size", "10",
              "--num_samples", "2", "--progress", "False", cwd=work, env={**env, "MPLBACKEND": "Agg"})
    assert "test accuracy" in out
    import json
    metrics = json.loads((work/"run"/"metrics.json").read_text())
    assert 0 <= metrics["test"]["accuracy"] <= 1 and metrics["options"]["num_epochs"] == 1
    assert {p.name for p in (work/"run").iterdir()} >= {"metrics.json", "decision_boundary.png", "data.png"}


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


def test_installed_digits_study_runs(installed):
    "`vnn_digits`, as the README shows it, in its quick configuration: every method, results.json in its layout."
    import json
    _, bin_dir, work, env = installed
    out_dir = work/"digits"
    run(bin_dir/"vnn_digits", "--outdir", out_dir, "--quick", "--seeds", "2", "--progress", "False",
        cwd=work, env={**env, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"})
    results = json.loads((out_dir/"results.json").read_text())
    methods = {"map", "map_ts", "ibvi", "klvi", "ensemble"}
    assert methods <= set(results), sorted(results)
    acc = results["ibvi"]["mlp"]["test_accuracy"]
    assert len(acc["values"]) == 2 and 0 <= acc["mean"] <= 1 and acc["std"] >= 0
    assert (out_dir/"results.md").read_text().count("|") > 10
