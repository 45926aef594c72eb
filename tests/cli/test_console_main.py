"""The ``kafka-backup`` script's exit: the command's status, everything flushed, running threads waited for.

``console_main`` skips the interpreter's teardown; these run it in a real
process, since that is where skipping could lose output.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path


def run(body: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(
        "from libkb.cli import app\n" + textwrap.dedent(body) + "\napp.main = command\napp.console_main()\n"
    )
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)


def test_the_status_and_buffered_output_come_out(tmp_path: Path) -> None:
    out = run(
        """
        import sys
        def command():
            sys.stdout.write("partial line without newline")  # still in the buffer at exit
            return 3
        """,
        tmp_path,
    )
    assert out.returncode == 3 and out.stdout == "partial line without newline"


def test_exit_handlers_run_and_log_handlers_are_flushed(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    out = run(
        f"""
        import atexit, logging, logging.handlers
        def command():
            target = logging.FileHandler({str(log)!r})
            buffered = logging.handlers.MemoryHandler(capacity=1000, target=target)  # flushed at shutdown
            logging.getLogger("job").addHandler(buffered)
            logging.getLogger("job").warning("the last line")
            atexit.register(print, "exit handler ran")
            return 0
        """,
        tmp_path,
    )
    assert out.returncode == 0 and out.stdout == "exit handler ran\n"
    assert log.read_text() == "the last line\n"


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    out = run(
        """
        import threading, time
        def command():
            threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished", flush=True))).start()
            return 5
        """,
        tmp_path,
    )
    assert out.returncode == 5 and out.stdout == "thread finished\n"
