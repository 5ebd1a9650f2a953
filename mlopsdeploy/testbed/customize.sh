#!/bin/sh
# mmdebstrap customize hook: turns a minbase bookworm tree into a freshly issued course VM.
# Usage: customize.sh ROOTFS DEFAULT_PUBKEY_FILE USER UID
# Part of the image recipe: editing this file changes the image digest and forces a rebuild.
set -eu
root="$1" pubkey="$2" user="$3" uid="$4"
home="/home/$user"

# The student's account: key-only login (password '*' is unusable but, unlike '!', not locked,
# so sshd accepts the key), passwordless sudo like the course VMs.
chroot "$root" useradd --create-home --uid "$uid" --user-group --groups sudo --shell /bin/bash "$user"
chroot "$root" usermod --password '*' "$user"
printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$user" >"$root/etc/sudoers.d/$user"
chmod 0440 "$root/etc/sudoers.d/$user"
install -d -m 0700 -o "$uid" -g "$uid" "$root$home/.ssh"
install -m 0600 -o "$uid" -g "$uid" "$pubkey" "$root$home/.ssh/authorized_keys"

# mmdebstrap copied the build host's resolver and names. The guest reaches no DNS server, so
# lookups fail fast on loopback instead of timing out; the hostname comes from nspawn (-M) and
# libnss-myhostname resolves it (sudo would otherwise warn on every call).
rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
printf 'nameserver 127.0.0.1\n' >"$root/etc/resolv.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

# sshd: keys only. No host keys in the image: each machine makes its own at first boot, so a
# wiped machine presents new host keys, exactly like a re-imaged VM. Only ed25519 and ECDSA:
# an RSA key costs seconds of CPU on every fresh machine, and clients prefer ed25519 anyway.
cat >"$root/etc/ssh/sshd_config.d/mlopsdeploy-testbed.conf" <<'CONF'
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
CONF
rm -f "$root"/etc/ssh/ssh_host_*
cat >"$root/etc/systemd/system/ssh-host-keys.service" <<'UNIT'
[Unit]
Description=Generate SSH host keys on first boot
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service

[Service]
Type=oneshot
ExecStartPre=/bin/sh -c 'rm -f /etc/ssh/ssh_host_*'
ExecStart=/usr/bin/ssh-keygen -q -t ecdsa -N "" -f /etc/ssh/ssh_host_ecdsa_key
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
RequiredBy=ssh.service
UNIT
chroot "$root" systemctl enable ssh-host-keys.service

# Timers that would try to reach apt mirrors the guest cannot reach, and grab the dpkg lock in
# the middle of a deploy.
chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer
