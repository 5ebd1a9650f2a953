"""sshd hardening: what the fact reads, and the config it renders for each OpenSSH it meets."""

from __future__ import annotations

import pytest

from mlopsdeploy.deployment.control.sshd_policy import hardening_settings, render_hardening
from mlopsdeploy.deployment.facts.sshd import BLOCK_BEGIN, BLOCK_END, Sshd, SshdSetup
from mlopsdeploy.deployment.operations.sshd import overridden, restore_command, write_command

# What Debian 12's OpenSSH 9.2 answers (abridged to what matters).
DEBIAN_12 = [
    "version OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.22 25 Aug 2026",
    "sudo yes",
    "unit ssh.service",
    "include yes",
    "Q kex diffie-hellman-group14-sha1 diffie-hellman-group16-sha512 ecdh-sha2-nistp256 "
    "curve25519-sha256 curve25519-sha256@libssh.org sntrup761x25519-sha512@openssh.com",
    "Q cipher aes128-cbc aes128-ctr aes256-ctr aes128-gcm@openssh.com "
    "chacha20-poly1305@openssh.com",
    "Q mac hmac-sha1 hmac-sha2-256 hmac-sha2-256-etm@openssh.com umac-128-etm@openssh.com",
    "Q HostKeyAlgorithms ssh-ed25519 ecdsa-sha2-nistp256 ssh-rsa rsa-sha2-256 rsa-sha2-512",
    "hostkey 256 SHA256:IOaw root@vm (ECDSA)",
    "hostkey 256 SHA256:rulR root@vm (ED25519)",
]


def setup_from(lines: list[str]) -> SshdSetup:
    setup = Sshd().process(lines)
    assert setup is not None
    return setup


def test_fact_reads_version_sudo_unit_algorithms_and_host_keys() -> None:
    setup = setup_from([*DEBIAN_12, "dropin|PasswordAuthentication no", "dropin|"])
    assert setup.version == (9, 2)
    assert (setup.sudo, setup.unit, setup.include_dir) == (True, "ssh.service", True)
    assert setup.host_keys == {"ECDSA": 256, "ED25519": 256}
    assert "chacha20-poly1305@openssh.com" in setup.supported["cipher"]
    assert setup.managed == "PasswordAuthentication no\n\n"
    assert Sshd().process([]) is None  # no OpenSSH at all


def test_settings_keep_only_modern_algorithms_the_host_knows() -> None:
    settings = hardening_settings(setup_from(DEBIAN_12))
    assert settings["PasswordAuthentication"] == "no"
    assert settings["KbdInteractiveAuthentication"] == "no"
    assert settings["PermitRootLogin"] == "no"
    assert settings["KexAlgorithms"] == (
        "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
        "diffie-hellman-group16-sha512"
    )
    assert settings["Ciphers"] == "aes256-ctr,aes128-gcm@openssh.com,aes128-ctr"
    assert settings["MACs"] == "hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com"
    # The ECDSA host key is hidden, the recorded ed25519 one stays; no RSA key exists.
    assert settings["HostKeyAlgorithms"] == "ssh-ed25519"
    assert settings["RequiredRSASize"] == "3072"


def test_older_openssh_gets_the_keywords_it_knows() -> None:
    lines = [line for line in DEBIAN_12 if not line.startswith("version")]
    settings = hardening_settings(setup_from(["version OpenSSH_8.4p1 Debian-5", *lines]))
    assert "ChallengeResponseAuthentication" in settings
    assert "PubkeyAcceptedKeyTypes" in settings
    assert "RequiredRSASize" not in settings
    with pytest.raises(ValueError, match="too old"):
        hardening_settings(setup_from(["version OpenSSH_7.2p2", *lines]))


def test_a_host_with_only_weak_host_keys_is_refused_rather_than_rekeyed() -> None:
    lines = [line for line in DEBIAN_12 if "ED25519" not in line]
    with pytest.raises(ValueError, match="would change the key you trusted"):
        hardening_settings(setup_from([*lines, "hostkey 2048 SHA256:x root@vm (RSA)"]))
    rsa = hardening_settings(setup_from([*lines, "hostkey 4096 SHA256:x root@vm (RSA)"]))
    assert rsa["HostKeyAlgorithms"] == "rsa-sha2-512,rsa-sha2-256"


def test_without_include_the_hardening_is_a_marked_block_at_the_top() -> None:
    setup = setup_from([line for line in DEBIAN_12 if line != "include yes"])
    text = render_hardening(setup)
    assert text.startswith(BLOCK_BEGIN + "\n")
    assert text.endswith(BLOCK_END + "\n")
    command = write_command(setup, text)
    assert "sshd_config.d" not in command
    assert restore_command(setup) == "tar -C /etc/ssh -xpf /etc/ssh/.mlopsdeploy-sshd-previous.tar"


def test_the_snapshot_covers_the_drop_in_directory_and_restore_drops_later_files() -> None:
    setup = setup_from(DEBIAN_12)
    assert "sshd_config sshd_config.d" in write_command(setup, render_hardening(setup))
    assert restore_command(setup).startswith("rm -rf /etc/ssh/sshd_config.d && tar")


def test_overridden_names_settings_another_file_won() -> None:
    settings = hardening_settings(setup_from(DEBIAN_12))
    effective = [
        "passwordauthentication yes",
        "permitrootlogin no",
        f"kexalgorithms {settings['KexAlgorithms']}",
        "port 22",
    ]
    assert overridden(settings, effective) == ["passwordauthentication yes"]
