"README.md is generated from nbs/index.ipynb (nbdev_readme needs Quarto, so .ci/readme.py does it)."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_in_sync_with_index():
    r = subprocess.run([sys.executable, ".ci/readme.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_readme_gives_install_main_job_and_tests():
    text = (ROOT/"README.md").read_text()
    for command in ["pip install torch==2.13.0", 'pip install -e ".[dev]"', "nbdev_test", "vnn_two_moons"]:
        assert command in text, f"README.md should show `{command}`"
