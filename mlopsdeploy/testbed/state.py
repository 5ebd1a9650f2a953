"""Where the testbed keeps its things, and the registry that hands out machine slots.

Every process that drives test VMs on this host (pytest-xdist workers, other engineers' test
runs, the CLI) shares one state dir. The registry records which machine holds which network
index and which process owns it; an exclusive flock around each read-modify-write keeps two
processes from ever picking the same index or name.

Lock order, to stay deadlock-free: the image build lock may be held while taking the registry
lock (pruning old images), never the other way round.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlopsdeploy.testbed.files import write_atomically
from mlopsdeploy.testbed.processes import ProcessId

STATE_DIR_ENV = "MLOPSDEPLOY_TESTBED_DIR"
SYSTEM_STATE_DIR = Path("/var/lib/mlopsdeploy/testbed")

#: Machine indexes N give the subnet 10.213.N.0/30; 0 and 255 are left out.
FIRST_INDEX = 1
LAST_INDEX = 254


@dataclass(frozen=True)
class State:
    """The state dir: images, the default keypair, machines and the registry."""

    root: Path

    @classmethod
    def default(cls) -> State:
        """$MLOPSDEPLOY_TESTBED_DIR, else the system dir for root, else a per-user dir.

        The per-user dir only exists so that listing and requirement checks work without root;
        booting machines always needs root.
        """
        override = os.environ.get(STATE_DIR_ENV)
        if override:
            return cls(Path(override))
        if os.geteuid() == 0:
            return cls(SYSTEM_STATE_DIR)
        return cls(Path.home() / ".local" / "state" / "mlopsdeploy" / "testbed")

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def machines(self) -> Path:
        return self.root / "machines"

    def machine_dir(self, name: str) -> Path:
        return self.machines / name

    @property
    def registry(self) -> Registry:
        return Registry(self.root / "machines.json")

    @contextmanager
    def machine_lock(self, name: str) -> Iterator[None]:
        """Exclusive hold on one machine's lifecycle, across processes.

        Two processes booting the same machine at once would run two containers on one disk.
        The lock file is deleted by `destroy` while held, so a waiter that wakes up holding the
        deleted file's lock notices (other inode) and locks the current file instead.
        """
        path = self.machine_lock_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        try:
            yield
        finally:
            os.close(fd)

    def machine_lock_path(self, name: str) -> Path:
        return self.machines / f"{name}.lock"


@dataclass(frozen=True)
class Record:
    """One registered machine. `owner` None means user-managed (the CLI): never stale."""

    name: str
    index: int
    image: str
    owner: ProcessId | None

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "image": self.image,
            "owner": self.owner.to_json() if self.owner else None,
        }

    @classmethod
    def from_json(cls, name: str, data: dict[str, object]) -> Record:
        owner = data.get("owner")
        return cls(
            name=name,
            index=int(str(data["index"])),
            image=str(data["image"]),
            owner=ProcessId(**owner) if isinstance(owner, dict) else None,
        )

    def stale(self) -> bool:
        """True when the owning process is gone, so nobody will ever tear this machine down."""
        return self.owner is not None and not self.owner.alive()


class Registry:
    """machines.json guarded by an flock on a sibling lock file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def locked(self) -> Iterator[dict[str, Record]]:
        """Yield all records for reading and changing; changes are saved on exit, atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = self._load()
            before = dict(records)
            yield records
            if records != before:
                self._save(records)

    def snapshot(self) -> dict[str, Record]:
        with self.locked() as records:
            return dict(records)

    def _load(self) -> dict[str, Record]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        return {name: Record.from_json(name, entry) for name, entry in data.items()}

    def _save(self, records: dict[str, Record]) -> None:
        data = {name: record.to_json() for name, record in sorted(records.items())}
        write_atomically(self.path, json.dumps(data, indent=1))


def free_index(records: dict[str, Record], taken_elsewhere: set[int]) -> int:
    """The lowest index neither registered nor in use on the host (e.g. by a leftover veth)."""
    used = {record.index for record in records.values()} | taken_elsewhere
    for index in range(FIRST_INDEX, LAST_INDEX + 1):
        if index not in used:
            return index
    raise RuntimeError(f"all {LAST_INDEX} testbed machine slots are in use")
