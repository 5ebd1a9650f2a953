"""What a hardened sshd config says for one host, worked out on the control machine.

The settings follow ssh-audit's hardening guides, cut to what the host's OpenSSH version, its
algorithms and its host keys allow (all read by the ``Sshd`` fact); the operation in
``deployment/operations/sshd.py`` puts the rendered text on the host, lockout-safe.
"""

from __future__ import annotations

from mlopsdeploy.deployment.facts.sshd import BLOCK_BEGIN, BLOCK_END, SshdSetup

# ssh-audit's server hardening guides (Debian 12/13, Ubuntu 22.04/24.04), preferred first; each
# list is cut to what the host's OpenSSH knows. Left out on purpose: chacha20-poly1305 (Terrapin
# for peers without strict kex) and diffie-hellman-group-exchange (it needs /etc/ssh/moduli
# pruned). curve25519 stays even where a guide keeps only post-quantum kex: paramiko, which the
# deploy logs in with, has no post-quantum kex, and ssh-audit only warns about curve25519.
KEX = (
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
)
CIPHERS = (
    "aes256-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-gcm@openssh.com",
    "aes128-ctr",
)
MACS = (
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "umac-128-etm@openssh.com",
)
ED25519_ALGORITHMS = (
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "ssh-ed25519",
)
RSA_ALGORITHMS = (
    "rsa-sha2-512-cert-v01@openssh.com",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
)
CA_ALGORITHMS = ("sk-ssh-ed25519@openssh.com", "ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256")
MIN_RSA_BITS = 3072
MIN_VERSION = (7, 4)

# Names sshd adds to its kex list that are markers, not methods.
KEX_MARKERS = ("kex-strict-", "ext-info-")
# sshd -T keywords that must read exactly as written, else another file overrides the hardening.
ENFORCED = (
    "passwordauthentication",
    "kbdinteractiveauthentication",
    "permitrootlogin",
    "kexalgorithms",
    "ciphers",
    "macs",
)


def _supported(wanted: tuple[str, ...], setup: SshdSetup, query: str) -> list[str]:
    known = set(setup.supported.get(query, ()))
    return [name for name in wanted if name in known]


def hardening_settings(setup: SshdSetup) -> dict[str, str]:
    """sshd keyword -> value for this host's OpenSSH version, algorithms and host keys.

    Raises ValueError when the host cannot be hardened without hiding every host key it has
    (only ECDSA or short RSA keys): replacing them would look like an impostor to the user.
    """
    if setup.version < MIN_VERSION:
        raise ValueError(f"OpenSSH {setup.version[0]}.{setup.version[1]} is too old to harden")
    host_key_algorithms = list(ED25519_ALGORITHMS) if "ED25519" in setup.host_keys else []
    if setup.host_keys.get("RSA", 0) >= MIN_RSA_BITS:
        host_key_algorithms += RSA_ALGORITHMS
    host_key_algorithms = _supported(tuple(host_key_algorithms), setup, "HostKeyAlgorithms")
    if not host_key_algorithms:
        raise ValueError(
            f"no ed25519 or >= {MIN_RSA_BITS}-bit RSA host key to keep (has "
            f"{', '.join(sorted(setup.host_keys)) or 'none'}); new host keys would change the "
            "key you trusted"
        )
    pubkey = _supported(ED25519_ALGORITHMS + RSA_ALGORITHMS, setup, "HostKeyAlgorithms")
    modern = setup.version >= (8, 5)
    settings = {
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication"
        if setup.version >= (8, 7)
        else "ChallengeResponseAuthentication": "no",
        "PermitRootLogin": "no",
        "PermitEmptyPasswords": "no",
        "KexAlgorithms": ",".join(_supported(KEX, setup, "kex")),
        "Ciphers": ",".join(_supported(CIPHERS, setup, "cipher")),
        "MACs": ",".join(_supported(MACS, setup, "mac")),
        "HostKeyAlgorithms": ",".join(host_key_algorithms),
        "PubkeyAcceptedAlgorithms" if modern else "PubkeyAcceptedKeyTypes": ",".join(pubkey),
        "HostbasedAcceptedAlgorithms" if modern else "HostbasedAcceptedKeyTypes": ",".join(pubkey),
    }
    if setup.version >= (7, 9):
        settings["CASignatureAlgorithms"] = ",".join(
            _supported(CA_ALGORITHMS, setup, "HostKeyAlgorithms")
        )
    if setup.version >= (9, 1):
        settings["RequiredRSASize"] = str(MIN_RSA_BITS)
    return settings


def render_hardening(setup: SshdSetup) -> str:
    """The managed text: a drop-in file, or a marked block for the top of ``sshd_config``."""
    major, minor = setup.version
    lines = [
        f"# Managed by mlopsdeploy: sshd hardening for OpenSSH {major}.{minor} after ssh-audit's",
        "# hardening guides. Set harden_sshd = false for this host to manage sshd yourself.",
        *(f"{key} {value}" for key, value in hardening_settings(setup).items()),
    ]
    if not setup.include_dir:
        lines = [BLOCK_BEGIN, *lines, BLOCK_END]
    return "\n".join(lines) + "\n"
