"""Every `attnforge ...` line in docs/guide.md's ```sh blocks runs, in-process, and exits with code 0.

Lines marked ``# slow`` (simulators, synthesis, the network, minutes) are skipped; a command that needs those
tools must carry the mark, so the guide never shows an unmarked command that this test cannot run.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "guide.md"
#: Subcommands (and options) that need a simulator, the synthesis tools, the network or a GPU suite.
NEEDS_TOOLS = ("regress", "synth", "peers", "bench --rtl", "reference --suite")


def guide_blocks(path: Path = GUIDE) -> list[list[str]]:
    """The `attnforge` lines of each ```sh block, in order, one list per block."""
    blocks = re.findall(r"```sh\n(.*?)```", path.read_text(), re.S)
    return [[line.strip() for line in b.splitlines() if line.strip().startswith("attnforge ")] for b in blocks]


def guide_commands(path: Path = GUIDE) -> list[str]:
    """The `attnforge` lines of the ```sh blocks, in order."""
    return [line for block in guide_blocks(path) for line in block]


def argv(line: str) -> list[str]:
    """The arguments after `attnforge`, without the trailing comment."""
    return shlex.split(line, comments=True)[1:]


def is_slow(line: str) -> bool:
    return bool(re.search(r"#\s*slow\b", line))


def test_guide_has_commands() -> None:
    cmds = guide_commands()
    assert len(cmds) > 20
    assert sum(not is_slow(c) for c in cmds) > 15


@pytest.mark.parametrize("line", guide_commands())
def test_tool_commands_are_marked_slow(line: str) -> None:
    cmd = " ".join(argv(line))
    if any(cmd.startswith(t) for t in NEEDS_TOOLS):
        assert is_slow(line), f"mark it `# slow`: {line}"


RUNNABLE = [(i, b) for i, b in enumerate(guide_blocks()) if any(not is_slow(c) for c in b)]


@pytest.mark.parametrize("block", [b for _, b in RUNNABLE], ids=[f"{i}-{argv(b[0])[0]}" for i, b in RUNNABLE])
def test_guide_commands_run(block: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    """A block's runnable lines in order, in one folder (a later line reads what an earlier one wrote, e.g.
    report after sweep); each block in its own folder, so the blocks run in parallel."""
    from attnforge.cli.main import main

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    failed = []
    for line in block:
        if is_slow(line):
            continue
        rc = main(argv(line))
        out = capsys.readouterr()
        if rc != 0:
            failed.append(f"{line}\n  exit {rc}: {out.err.strip()[-500:]}")
    assert not failed, "docs/guide.md commands failed:\n" + "\n".join(failed)
