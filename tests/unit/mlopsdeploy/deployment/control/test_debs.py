"""Which .deb files an offline host gets: what apt, resolving against *its* dpkg status, adds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from mlopsdeploy.deployment.control import debs

SIMULATION = """\
NOTE: This is only a simulation!
Reading package lists...
Inst liblua5.3-0 (5.3.6-2 Debian:12.11/stable [amd64])
Inst libc6 [2.36-9+deb12u9] (2.36-9+deb12u10 Debian:12.11/stable [amd64])
Inst haproxy (2.6.12-1+deb12u4 Debian-Security:12/stable-security [amd64])
Conf liblua5.3-0 (5.3.6-2 Debian:12.11/stable [amd64])
"""
URIS = (
    "'http://deb.debian.org/debian/pool/main/l/lua5.3/liblua5.3-0_5.3.6-2_amd64.deb' "
    "liblua5.3-0_5.3.6-2_amd64.deb 120 SHA256:aa\n"
    "'http://deb.debian.org/debian-security/pool/h/haproxy_2.6.12-1%2bdeb12u4_amd64.deb' "
    "haproxy_2.6.12-1+deb12u4_amd64.deb 2042596 SHA256:bb\n"
)


def test_missing_versions_resolve_against_the_hosts_status(monkeypatch) -> None:
    seen: dict[str, str] = {}

    def apt(args: Sequence[str], cwd: Path | None = None) -> str:
        status = next(a.split("=", 1)[1] for a in args if a.startswith("Dir::State::status="))
        seen["status"] = Path(status).read_text()
        seen["args"] = " ".join(args)
        return SIMULATION

    monkeypatch.setattr(debs, "_apt", apt)
    found = debs.missing_versions(["haproxy", "socat"], "Package: socat\nStatus: install ok\n")
    assert found == [
        "liblua5.3-0=5.3.6-2",
        "libc6=2.36-9+deb12u10",
        "haproxy=2.6.12-1+deb12u4",
    ]
    assert seen["status"] == "Package: socat\nStatus: install ok\n"
    assert seen["args"].startswith("-s ") and seen["args"].endswith(
        "install --no-install-recommends haproxy socat"
    )


def test_fetch_downloads_only_what_the_pool_lacks(monkeypatch, tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    (pool / "liblua5.3-0_5.3.6-2_amd64.deb").write_bytes(b"cached")
    downloads: list[list[str]] = []

    def apt(args: Sequence[str], cwd: Path | None = None) -> str:
        if "--print-uris" in args:
            return URIS
        downloads.append(list(args))
        assert cwd is not None
        (cwd / "haproxy_2.6.12-1+deb12u4_amd64.deb").write_bytes(b"new")
        return ""

    monkeypatch.setattr(debs, "_apt", apt)
    versions = ["liblua5.3-0=5.3.6-2", "haproxy=2.6.12-1+deb12u4"]
    files = debs.fetch_debs(pool, versions)
    assert [f.name for f in files] == [
        "liblua5.3-0_5.3.6-2_amd64.deb",
        "haproxy_2.6.12-1+deb12u4_amd64.deb",
    ]
    assert all(f.is_file() for f in files)
    assert (pool / "liblua5.3-0_5.3.6-2_amd64.deb").read_bytes() == b"cached"
    assert downloads == [["download", *versions]]
    assert sorted(p.name for p in pool.iterdir()) == [
        ".lock",
        "haproxy_2.6.12-1+deb12u4_amd64.deb",
        "liblua5.3-0_5.3.6-2_amd64.deb",
    ]
    downloads.clear()
    assert debs.fetch_debs(pool, versions) == files and downloads == []


def test_nothing_missing_fetches_nothing(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(debs, "_apt", lambda *a, **k: pytest.fail("apt was asked"))
    assert debs.fetch_debs(tmp_path / "pool", []) == []
