"""README and docs snippets are executed, so they cannot rot."""

from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def test_readme_has_exactly_two_setup_commands():
    setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)
    assert len(commands) == 2
    assert "pip install" in commands[0] and "sieveopt run" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    setup = README.split("## Set-up", 1)[1]
    test_cmd = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)[1].strip()
    pytest_part = test_cmd.split("&&")[-1].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert pytest_part in ci, f"{pytest_part!r} not in .ci/run"


@pytest.mark.parametrize("code", _blocks("python"))
def test_readme_python_snippets_run(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__readme__"})


def test_readme_cli_tour_commands_parse(tmp_path, monkeypatch):
    from sieveopt.cli.main import build_parser

    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    tour = README.split("## A tour of the CLI", 1)[1].split("\n## ", 1)[0]
    for block in re.findall(r"```bash\n(.*?)```", tour, flags=re.S):
        for line in block.strip().splitlines():
            argv = shlex.split(line.split("#", 1)[0])
            assert argv[0] == "sieveopt"
            parser.parse_args(argv[1:])


@pytest.mark.parametrize("script", sorted((ROOT / "docs" / "examples").glob("*.py")), ids=lambda p: p.name)
def test_docs_examples_run(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
