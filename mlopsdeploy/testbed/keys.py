"""The course's default shared SSH key, generated once per state dir.

Every freshly issued course VM trusts the key each student received. The testbed stands in for
it with one ed25519 keypair kept in the state dir (private key 0600, never printed); the image
recipe includes its public half, so a new keypair means a new image.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path

from mlopsdeploy.testbed.state import State

KEY_COMMENT = "mlopsdeploy testbed default key"


def default_key(state: State) -> Path:
    """Path of the default private key, created on first use (flock: one creator wins)."""
    state.keys.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = state.keys / "default"
    with open(state.keys / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not key.exists() or not public_key_path(key).exists():
            key.unlink(missing_ok=True)
            public_key_path(key).unlink(missing_ok=True)
            generate_keypair(key, KEY_COMMENT)
    return key


def generate_keypair(path: Path, comment: str) -> Path:
    """A passphrase-less ed25519 keypair at `path` (+ .pub); returns the private key path."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    path.chmod(0o600)
    return path


def public_key(private_key: Path) -> str:
    """The public key line (type, base64, comment) of a keypair made by generate_keypair."""
    return public_key_path(private_key).read_text().strip()


def public_key_path(private_key: Path) -> Path:
    """Where ssh-keygen puts the public half: the private key's name plus ".pub"."""
    return private_key.with_name(private_key.name + ".pub")
