"""The Snakemake commands the configs and the README document still plan.

Every config under config/ says in its header how to run it, and the README's "Real data" block
lists the mini configs' commands; a renamed rule, a schema change or a config entry that no longer
validates breaks those lines without breaking any other test. The fast test checks that each
command names config files that exist and that every config is documented; the slow one dry-runs
each command (a few seconds each: the Snakefile imports the package and torch)."""

from __future__ import annotations

import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from processes import run_group
from test_workflow import REPO, _copy_project, _env

# Configs without a command planned here: the regression check's runs through `kglnet
# regression-check` (tests/test_regression.py), the paper's needs a user's bundle (--config bundle=;
# planned on a written bundle in test_workflow.py).
NOT_PLANNED_HERE = {"ci.yaml", "paper.yaml"}


def _header_commands(path: Path) -> list[str]:
    """`snakemake ...` lines of a config's leading comment, continuation lines (`\\`) joined."""
    commands, current = [], None
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if current is not None:
            current += " " + text.rstrip("\\").strip()
            if not text.endswith("\\"):
                commands.append(current)
                current = None
        elif text.startswith("snakemake "):
            if text.endswith("\\"):
                current = text.rstrip("\\").strip()
            else:
                commands.append(text)
    return commands


def _readme_commands() -> list[str]:
    """`snakemake ... --configfile config/...` lines of the README's shell blocks, comments cut."""
    lines = re.findall(r"^snakemake [^\n]*--configfile config/[^\n]*$", (REPO / "README.md").read_text(), re.M)
    return [line.split(" #", 1)[0].strip() for line in lines]


def documented_commands() -> dict[str, list[str]]:
    """Where it is documented -> the command's arguments after `snakemake`. The paper config's
    command names a bundle folder the user supplies; its planning is tested on a written bundle
    (test_workflow.py), so it is left out here."""
    found = {}
    for path in sorted((REPO / "config").glob("*.yaml")):
        for i, command in enumerate(_header_commands(path)):
            found[f"config/{path.name}#{i}"] = command
    for i, command in enumerate(_readme_commands()):
        found[f"README.md#{i}"] = command
    split = {where: shlex.split(cmd)[1:] for where, cmd in found.items()}
    return {where: args for where, args in split.items() if "--config" not in args}


def _configfiles(args: list[str]) -> list[str]:
    """What follows --configfile up to the next option: Snakemake reads all of it as config files,
    so a target written after the list is taken for one."""
    files, taking = [], False
    for arg in args:
        if arg.startswith("-"):
            taking = arg == "--configfile"
        elif taking:
            files.append(arg)
    return files


def test_every_config_documents_a_command_and_every_command_names_existing_configs():
    commands = documented_commands()
    named = {f for args in commands.values() for f in _configfiles(args)}
    for where, args in commands.items():
        assert _configfiles(args), f"{where}: a documented command without --configfile: {args}"
        for name in _configfiles(args):
            assert name.endswith(".yaml") and (REPO / name).is_file(), (
                f"{where}: --configfile takes {name!r}, which is not a config file of the project"
                " (a target after the list is read as a config file: put targets first, or after --)"
            )
    undocumented = {
        p.name for p in (REPO / "config").glob("*.yaml")
        if f"config/{p.name}" not in named and p.name not in NOT_PLANNED_HERE
    }
    assert not undocumented, f"configs whose header gives no runnable snakemake command: {sorted(undocumented)}"


def test_header_parser_joins_continued_lines(tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text(
        "# A study.\n#   snakemake results/tables/os.md --cores 2 \\\n#       --configfile config/mini.yaml"
        " config/study.yaml\n# Results: somewhere.\nzoo: false\n#   snakemake --not-a-header\n"
    )
    assert _header_commands(config) == [
        "snakemake results/tables/os.md --cores 2 --configfile config/mini.yaml config/study.yaml"
    ]
    assert _configfiles(shlex.split(_header_commands(config)[0])[1:]) == ["config/mini.yaml", "config/study.yaml"]
    # a target after the list is one more "config file" to Snakemake, and so to the check
    assert _configfiles(["--configfile", "config/mini.yaml", "results/tables/os.md"]) == [
        "config/mini.yaml", "results/tables/os.md"]
    assert _configfiles(["--configfile", "config/mini.yaml", "--", "results/tables/os.md"]) == ["config/mini.yaml"]


@pytest.mark.slow
def test_every_documented_command_plans(tmp_path):
    """Each command as written, with -n, in a copy of the project without data: every one must
    plan at least one job (nothing exists yet) and exit 0. Two at a time (2 cores)."""
    project = _copy_project(tmp_path / "project")
    commands = documented_commands()

    def plan(args):
        # the flags go first: a command may end in --configfile's list, which takes what follows
        return run_group(["snakemake", "-n", "--quiet=rules", *args], cwd=project, env=_env(),
                         capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(commands, pool.map(plan, commands.values())))
    failed = {
        where: (result.stdout + result.stderr)[-1500:]
        for where, result in results.items()
        if result.returncode != 0 or not re.search(r"^total\s+\d+", result.stdout + result.stderr, re.M)
    }
    assert not failed, "documented commands that do not plan:\n" + "\n".join(
        f"--- {where}: snakemake {' '.join(commands[where])}\n{out}" for where, out in failed.items()
    )
