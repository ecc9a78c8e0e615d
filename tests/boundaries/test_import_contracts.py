"""The import contracts of pyproject.toml bite: `make lint` runs them, the project keeps them, and a
copy of the project with one forbidden import breaks exactly the contract that forbids it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {contract["id"]: contract["name"] for contract in CONFIG["contracts"]}
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def copy_project(dest: Path) -> Path:
    """The root packages (llm_batch lives under plugins/) and the configuration, nothing else."""
    for package in CONFIG["root_packages"]:
        source = ROOT / package if (ROOT / package).is_dir() else ROOT / "plugins" / package
        shutil.copytree(source, dest / source.relative_to(ROOT), ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{project}{os.pathsep}{project / 'plugins'}"}
    command = [str(LINT_IMPORTS), "--no-cache", "--no-logo"]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=120)


def verdicts(output: str) -> dict[str, str]:
    return {
        name: match.group(1)
        for name in CONTRACTS.values()
        if (match := re.search(rf"^{re.escape(name)} (KEPT|BROKEN)$", output, re.MULTILINE))
    }


def test_make_lint_checks_the_contracts():
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe and "lint-imports" in recipe.group(1)


def test_the_project_as_it_is_keeps_every_contract(tmp_path):
    done = lint_imports(copy_project(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert verdicts(done.stdout) == dict.fromkeys(CONTRACTS.values(), "KEPT")


@pytest.mark.parametrize(
    ("module", "forbidden_import", "contract"),
    [
        ("plugins/llm_batch/batch_rules.py", "import local_batch_api", "library-without-server"),
        ("local_batch_api/validation.py", "from llm_batch.job import BatchJob", "server-without-library"),
        ("include/batch_api_process.py", "from dags.review_sentiment import JOB", "nothing-imports-dags"),
        ("benchmarks/bench_pipeline.py", "import tests.batch_server", "nothing-imports-tests"),
    ],
)
def test_one_forbidden_import_breaks_its_contract(tmp_path, module, forbidden_import, contract):
    project = copy_project(tmp_path)
    with (project / module).open("a") as handle:
        handle.write(f"\n{forbidden_import}  # noqa\n")
    done = lint_imports(project)
    assert done.returncode != 0
    broken = {name for name, verdict in verdicts(done.stdout).items() if verdict == "BROKEN"}
    assert broken == {CONTRACTS[contract]}, done.stdout
    importer = module.removeprefix("plugins/").removesuffix(".py").replace("/", ".")
    forbidden_package = forbidden_import.split()[1].split(".")[0]
    assert f"{importer} -> {forbidden_package}" in done.stdout
