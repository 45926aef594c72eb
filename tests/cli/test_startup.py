"""What a command loads before it runs: only its own options, and no code for features the job does not use.

Why it matters: a backup's start-up is paid by every run, and on a 1 GiB
topic it was a quarter of the time (bench/README.rst, session 17).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def _script(body: str) -> str:
    """Run ``body`` after the script's start-up (``libkb.cli.console_main`` does the same first)."""
    probe = "import gc, sys\nfrom libkb.cli import startup\nstartup.begin()\n" + body
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_marshmallow_e_mail_validation_still_works_after_the_script_deferred_its_pattern() -> None:
    out = _script(
        "from marshmallow import Schema, ValidationError, fields, validate\n"
        "print(type(validate.Email.DOMAIN_REGEX).__name__)\n"
        "class S(Schema):\n"
        "    mail = fields.Email()\n"
        "print(S().load({'mail': 'ops@example.com'}), S().load({'mail': 'ops@exämple.com'}))\n"
        "try:\n"
        "    S().load({'mail': 'ops@-example.com'})\n"
        "except ValidationError as exc:\n"
        "    print(exc.messages)\n"
    )
    deferred, loaded, refused = out.splitlines()
    assert deferred == "DeferredPattern"
    assert loaded == "{'mail': 'ops@example.com'} {'mail': 'ops@exämple.com'}"
    assert refused == "{'mail': ['Not a valid email address.']}"


def test_a_deferred_pattern_compiles_once_on_first_use_and_passes_an_abc_class_statement() -> None:
    import abc
    import re

    from libkb.cli.startup import DeferredPattern

    made: list[str] = []

    def compile_(pattern: str, flags: int) -> re.Pattern[str]:
        made.append(pattern)
        return re.compile(pattern, flags)

    lazy = DeferredPattern("[a-z]+", re.IGNORECASE, compile_)

    class Holder(abc.ABC):  # noqa: B024  (abc reads __isabstractmethod__ from every class-body value)
        PATTERN = lazy

    assert made == [] and Holder.PATTERN is lazy
    assert lazy.fullmatch("AbC") and not lazy.match("1") and lazy.pattern == "[a-z]+"
    assert made == ["[a-z]+"]


def test_the_collector_waits_through_the_scripts_imports_and_resumes_for_the_command() -> None:
    out = _script(
        "print(gc.isenabled())\n"
        "import libkb.cli.app\n"
        "with startup.loading():\n"
        "    import libkb.cli.backup\n"
        "    print(gc.isenabled())\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 10_000)\n"
    )
    assert out.splitlines() == ["False", "False", "True True"]


def test_a_program_that_calls_main_keeps_its_collector_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import gc

    frozen = gc.get_freeze_count()
    assert main(["list", "--path", str(tmp_path)]) == 0  # reaches the command, past the start-up's end
    assert "no backups" in capsys.readouterr().out.lower()
    assert gc.isenabled() and gc.get_freeze_count() == frozen
