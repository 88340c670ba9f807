"""What the distribution installs: one top-level package, ``searchidx``, with the web app in it.

A top-level ``web`` would collide with any other project's; the web/ folder installs as
``searchidx.web`` (pyproject.toml's package-dir).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: What building the wheel reads: the project, the README it embeds, and the packages' folders.
BUILD_SOURCES = ("pyproject.toml", "README.md", "searchidx", "web")


def test_installed_distribution_provides_only_searchidx():
    provided = {name for name, dists in packages_distributions().items() if "searchidx" in dists}
    assert provided == {"searchidx"}


def test_wheel_installs_web_as_searchidx_web(tmp_path: Path):
    # A copy, so that no build/ folder left in the checkout by an older build adds its files.
    source = tmp_path / "source"
    source.mkdir()
    for name in BUILD_SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(REPO / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy(REPO / name, source / name)
    build = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
    built = subprocess.run(
        [sys.executable, "-c", build, str(tmp_path / "dist")],
        cwd=source,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    top_level = {name.split("/")[0] for name in names}
    assert {name for name in top_level if not name.endswith(".dist-info")} == {"searchidx"}
    for shipped in (
        "searchidx/web/app.py",
        "searchidx/web/openapi.json",
        "searchidx/web/py.typed",
        "searchidx/web/static/style.css",
        "searchidx/web/templates/base.html",
        "searchidx/web/templates/partials/hit.html",
    ):
        assert shipped in names
