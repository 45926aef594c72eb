"""What a command loads before it runs: only its own options, and no code for features the job does not use.

Why it matters: a backup's start-up is paid by every run, and on a 1 GiB
topic it was a quarter of the time (bench/README.rst, session 17).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from libkb.cli.app import _command_named, build_parser, main


def _commands(parser: object) -> set[str]:
    actions = [a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict)]  # type: ignore[attr-defined]
    return set(actions[0].choices)


def test_a_run_builds_its_command_alone() -> None:
    everything = _commands(build_parser())
    assert {"backup", "restore", "validate", "offset-rollback", "status"} <= everything
    assert _commands(build_parser("backup")) == {"backup"}
    assert _commands(build_parser("offset-rollback")) == {"offset-rollback"}
    assert _commands(build_parser("bakup")) == everything  # not a command: argparse lists them all


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["backup", "--config", "job.yaml"], "backup"),
        (["-v", "--log-level", "debug", "backup", "--config", "x"], "backup"),
        (["--log-format", "json", "restore"], "restore"),
        (["--version"], None),
        ([], None),
    ],
)
def test_the_command_is_the_first_word_that_is_no_option_or_value(argv: list[str], named: str | None) -> None:
    assert _command_named(argv) == named


def test_a_mistyped_command_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bakup", "--config", "x"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'bakup'" in err
    assert "backup" in err and "restore" in err and "offset-rollback" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "backup", "--config", "job.yaml", "--format", "json", "-v"],
        ["--log-level", "debug", "restore", "--config", "job.yaml"],
        ["offset-rollback", "list", "--path", "p", "--backup-id", "b"],
        ["validate", "--path", "p", "--backup-id", "b", "--deep"],
    ],
)
def test_the_command_alone_parses_as_the_whole_command_line_does(argv: list[str]) -> None:
    alone, whole = build_parser(_command_named(argv)).parse_args(argv), build_parser().parse_args(argv)
    assert {k: v for k, v in vars(alone).items() if k != "command_parser"} == {
        k: v for k, v in vars(whole).items() if k != "command_parser"
    }


def test_a_backup_without_encryption_loads_no_cryptography_and_no_status_client() -> None:
    probe = (
        "import sys\n"
        "import libkb.cli.app, libkb.cli.backup, libkb.backup.engine, libkb.storage.drivers.filesystem\n"
        "from libkb.format.zstream import StreamEncoder\n"
        "StreamEncoder(3).encode(b'x' * 100_000, 0)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cryptography', 'libkb.ops.status'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
