"""The error tree: every LibkbError subclass is drawn in libkb/errors.py, under its real parent, and exported.

Also: no Kafka exception leaves libkb's boundaries, and the CLI maps every
error to its exit status in one place (libkb/cli/exits.py).
"""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from confluent_kafka.admin import AdminClient

import libkb
from libkb import errors
from libkb.errors import LibkbError


def _all_subclasses() -> dict[str, type[LibkbError]]:
    for module in pkgutil.walk_packages(libkb.__path__, "libkb."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: dict[str, type[LibkbError]] = {}
    todo = [LibkbError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            assert found.setdefault(sub.__name__, sub) is sub, f"two error classes named {sub.__name__}"
            todo.append(sub)
    return found


def _drawn_tree() -> dict[str, tuple[str, str]]:
    """Class name -> (parent name, builtin in parentheses or "") as the docstring draws them."""
    drawn: dict[str, tuple[str, str]] = {}
    parents = ["LibkbError"]
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^    ((?:[│ ]   )*)[├└]── (\w+)(?: \((\w+)\))?", line)
        if not match:
            continue
        depth = len(match.group(1)) // 4
        del parents[depth + 1 :]
        drawn[match.group(2)] = (parents[depth], match.group(3) or "")
        parents.append(match.group(2))
    return drawn


def test_every_libkb_error_is_in_the_drawn_tree_under_its_parent() -> None:
    classes, drawn = _all_subclasses(), _drawn_tree()
    assert sorted(classes) == sorted(drawn)
    for name, cls in classes.items():
        parent = next(b for b in cls.__bases__ if issubclass(b, LibkbError))
        builtins = [b.__name__ for b in cls.__bases__ if not issubclass(b, LibkbError)]
        assert drawn[name] == (parent.__name__, builtins[0] if builtins else ""), name


def test_every_libkb_error_is_exported_by_the_package() -> None:
    for name, cls in {"LibkbError": LibkbError, **_all_subclasses()}.items():
        assert name in libkb.__all__, name
        assert getattr(libkb, name) is cls, name


def test_a_kafka_failure_reaches_the_caller_as_a_libkb_error() -> None:
    """A real librdkafka failure (no broker at the address) at KafkaAdmin's boundary."""
    from libkb.kafka.admin import KafkaAdmin
    from libkb.kafka.errors import KafkaClientError

    admin = KafkaAdmin(
        AdminClient({"bootstrap.servers": "127.0.0.1:9", "socket.timeout.ms": 200}), timeout=0.3
    )
    with pytest.raises(KafkaClientError, match=r"^Kafka: ") as raised:
        admin.partition_counts()
    assert raised.value.code is not None and isinstance(raised.value, LibkbError)


def test_the_engines_and_offset_commands_are_kafka_boundaries() -> None:
    from libkb.backup.engine import BackupEngine
    from libkb.offsets import bulk
    from libkb.restore import groups
    from libkb.restore.engine import RestoreEngine
    from libkb.restore.validation import runner

    rollback = importlib.import_module(
        "libkb.offsets.rollback"
    )  # the package exports a function of that name
    entries = [
        BackupEngine.run,
        RestoreEngine.run,
        RestoreEngine.plan,
        bulk.reset_in_parallel,
        rollback.take_snapshot,
        rollback.reset_with_snapshot,
        rollback.rollback,
        rollback.verify,
        groups.translate_groups,
        groups.apply_offsets,
        runner.run_validation,
    ]
    for entry in entries:
        assert entry.__code__.co_filename.endswith("libkb/kafka/errors.py"), entry.__qualname__
