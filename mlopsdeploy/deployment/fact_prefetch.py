"""A deploy's facts read from the host in one round trip, while nothing has changed there yet.

Every fact is an SSH command of its own: a channel, a shell, an answer. A no-op deploy asks
~28 of them one after another, which was most of its time (60-70 ms each on a quiet machine,
0.24 s each at load 10). The facts a host's deploy asked are recorded after each run (control
side, under the state dir); the next run asks all of them in one command right after taking
the host lock, runs them side by side on the host, and answers ``host.get_fact`` from that.

The answers are only used while they are exactly what pyinfra would read: from the first
command an operation runs on the host or file it uploads, every fact is read live again. So a
no-op run reads the host once, and a run that changes something reads what it read before
from that point on. A fact asked under sudo or other connector arguments, a short fact, or one
whose command needs a check for a missing binary is always read live.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import itertools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from pyinfra.api import FactBase, Host, StringCommand

from mlopsdeploy.config import HostConfig, state_dir

MARKER = "@@mlopsdeploy-fact"
# Connector arguments that change how a fact's command runs: such a fact is read live.
_RUN_AS = ("_sudo", "_sudo_user", "_su_user", "_doas", "_env", "_chdir")

Key = tuple[str, str]


def record_path(cfg: HostConfig, key: Path) -> Path:
    """Where the facts asked on this host are kept: per host, deploy root and login key (the
    bootstrap with the default key asks far fewer than the deploy with the own key)."""
    who = f"{cfg.user}@{cfg.address}:{cfg.ssh_port}{cfg.base_dir} {key}"
    return state_dir() / "facts" / f"{hashlib.sha256(who.encode()).hexdigest()[:16]}.json"


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _key(cls: type, kwargs: dict[str, Any]) -> Key | None:
    """(class, arguments) as recorded, None for a fact that must be read live."""
    try:
        return _name(cls), json.dumps(kwargs, sort_keys=True)
    except TypeError:
        return None


def _fact_class(name: str) -> type[FactBase] | None:
    module, _, qualname = name.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return found if isinstance(found, type) and issubclass(found, FactBase) else None


def _command(cls: type[FactBase], kwargs: dict[str, Any]) -> str | None:
    """The fact's shell command, if it is a plain string pyinfra would run as it is."""
    fact = cls()
    if fact.shell_executable:
        return None
    try:
        if fact.requires_command(**kwargs):
            return None
        command = fact.command(**kwargs)
    except TypeError:
        return None
    return command if isinstance(command, str) else None


def batch_script(commands: list[str]) -> str:
    """One sh script running ``commands`` side by side, then printing each one's exit status
    and its output (base64, so every byte and line end comes back exactly)."""
    lines = ["d=$(mktemp -d) || exit 1"]
    for index, command in enumerate(commands):
        lines.append(f'{{ ( {command}\n) >"$d/{index}" 2>/dev/null; echo $? >"$d/{index}.rc"; }} &')
    lines.append("wait")
    indexes = " ".join(str(index) for index in range(len(commands)))
    lines.append(
        f'for i in {indexes}; do echo "{MARKER} $i $(cat "$d/$i.rc")"; '
        'base64 -w0 "$d/$i"; echo; done; rm -rf "$d"'
    )
    return "\n".join(lines)


def parse_batch(output: list[str], count: int) -> dict[int, tuple[bool, list[str]]]:
    """Each command's (succeeded, stdout lines as pyinfra splits them) from the batch output."""
    answers: dict[int, tuple[bool, list[str]]] = {}
    for marker, encoded in itertools.pairwise(output):
        words = marker.split()
        if len(words) != 3 or words[0] != MARKER or not words[1].isdigit():
            continue
        text = base64.b64decode(encoded).decode("utf-8", errors="replace")
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        answers[int(words[1])] = (words[2] == "0", lines)
    return {index: answer for index, answer in answers.items() if index < count}


class Prefetch:
    """Answers ``host.get_fact`` from one batched read until the run changes the host."""

    def __init__(self, host: Host, path: Path) -> None:
        self.host = host
        self.path = path
        self.answers: dict[Key, Any] = {}
        self.asked: list[dict[str, Any]] = []
        self._asked: set[Key] = set()
        self.live = False
        self._reading = False

    def load(self) -> None:
        """Read every recorded fact in one command (nothing recorded: nothing read)."""
        try:
            recorded = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        wanted: list[tuple[Key, type[FactBase], str]] = []
        for entry in recorded if isinstance(recorded, list) else []:
            cls = _fact_class(str(entry.get("fact")))
            kwargs = entry.get("kwargs")
            if cls is None or not isinstance(kwargs, dict):
                continue
            key, command = _key(cls, kwargs), _command(cls, kwargs)
            if key is not None and command is not None:
                wanted.append((key, cls, command))
        if not wanted:
            return
        ok, output = self.host.run_shell_command(
            StringCommand(batch_script([command for _, _, command in wanted]))
        )
        if not ok:
            return
        for index, (succeeded, lines) in parse_batch(output.stdout_lines, len(wanted)).items():
            key, cls, _ = wanted[index]
            fact = cls()
            with suppress(Exception):  # a fact that cannot process it is read live instead
                self.answers[key] = fact.process(lines) if succeeded and lines else fact.default()

    def save(self) -> None:
        """Record what this run asked, for the next run (written whole, never half)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(f".{id(self)}.tmp")
        partial.write_text(json.dumps(self.asked, indent=1))
        partial.replace(self.path)

    def get_fact(self, original: Callable[..., Any], cls: type, *args: Any, **kwargs: Any) -> Any:
        plain = not args and not any(name.startswith("_") for name in kwargs)
        running: Any = self.host.current_op_global_arguments or {}
        shell = running.get("_shell_executable")
        plain = plain and not any(running.get(name) for name in _RUN_AS)
        plain = plain and shell in (None, self.host.state.config.SHELL)
        key = _key(cls, kwargs) if plain and issubclass(cls, FactBase) else None
        if key is not None and key not in self._asked:
            self._asked.add(key)
            self.asked.append({"fact": key[0], "kwargs": json.loads(key[1])})
        if key is not None and not self.live and key in self.answers:
            return self.answers[key]
        self._reading = True
        try:
            return original(cls, *args, **kwargs)
        finally:
            self._reading = False

    def changed(self) -> None:
        """The run did something on the host: facts are read live from now on."""
        if not self._reading:
            self.live = True


@contextmanager
def prefetched_facts(host: Host, cfg: HostConfig, key: Path) -> Iterator[Prefetch]:
    """``host``'s facts answered from one batched read until the run changes something there.

    Enter it once the host lock is held (nothing else changes the host meanwhile); on a clean
    exit the facts asked are recorded for the next run.
    """
    prefetch = Prefetch(host, record_path(cfg, key))
    get_fact, run, put = host.get_fact, host.run_shell_command, host.put_file

    def run_shell_command(*args: Any, **kwargs: Any) -> Any:
        prefetch.changed()
        return run(*args, **kwargs)

    def put_file(*args: Any, **kwargs: Any) -> Any:
        prefetch.changed()
        return put(*args, **kwargs)

    prefetch.load()
    host.get_fact = lambda cls, *a, **kw: prefetch.get_fact(get_fact, cls, *a, **kw)  # type: ignore[method-assign,assignment]
    host.run_shell_command = run_shell_command  # type: ignore[method-assign]
    host.put_file = put_file  # type: ignore[method-assign]
    try:
        yield prefetch
        prefetch.save()
    finally:
        for name in ("get_fact", "run_shell_command", "put_file"):
            host.__dict__.pop(name, None)
