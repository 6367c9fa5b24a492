# shellcheck shell=bash
# Shared helpers for bin/dev and bin/test. Sourced, never executed.
#
# After sourcing, the current directory is the repository root and REPO_ROOT names it, so the
# scripts behave the same from any working directory.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT" || exit 1

VENV="$REPO_ROOT/.venv"
PY="$VENV/bin/python"

log() { printf '==> %s\n' "$*"; }
warn() { printf '==> WARNING: %s\n' "$*" >&2; }
die() { printf '==> ERROR: %s\n' "$*" >&2; exit 1; }

# Seconds since the epoch, with fractions; `elapsed START` prints "12.3s".
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1fs", e - s }'; }

# Run a command as root: directly when we are root, else through sudo (non-interactive when
# there is no terminal to ask for a password on).
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [[ -t 0 ]]; then sudo "$@"; else sudo -n "$@"; fi
    else
        die "need root to run '$*' (not root and sudo is not installed); run as root or install the packages yourself"
    fi
}

# apt-get install the given Debian packages, running `apt-get update` first once per process.
APT_UPDATED=""
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install these packages yourself: $*"
    if [[ $EUID -ne 0 ]] && ! command -v sudo >/dev/null 2>&1; then
        die "$* not installed, and installing needs root (no sudo here): as root, run apt-get install -y $*"
    fi
    local start
    start="$(now)"
    if [[ -z $APT_UPDATED ]]; then
        log "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
            || die "apt-get update failed"
        APT_UPDATED=1
    fi
    log "installing $* with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || die "apt-get install $* failed"
    log "installed $* in $(elapsed "$start")"
}

# The system libraries WeasyPrint renders invoice PDFs with (Pango, through cffi): installed with
# apt-get when the dynamic linker does not know them.
ensure_document_libraries() {
    local missing=() library known
    known="$({ ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null || true)"
    for library in libpango-1.0-0:libpango-1.0.so.0 libpangoft2-1.0-0:libpangoft2-1.0.so.0; do
        [[ $known == *"${library#*:}"* ]] || missing+=("${library%%:*}")
    done
    if ((${#missing[@]})); then
        apt_install "${missing[@]}"
    fi
}

# A TCP port that is free on 127.0.0.1 right now (the OS picks it).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Create .venv when missing or broken, and pip install the given requirements file into it.
# The install is skipped when a stamp in .venv shows the same requirements (the file and the
# files it includes with -r) were already installed with the same Python.
ensure_venv() {
    local requirements="$1" start stamp digest
    [[ -f $requirements ]] || die "$requirements not found"
    command -v python3 >/dev/null 2>&1 || die "python3 not found (CELAEST needs Python 3.11)"

    if [[ ! -x $PY ]] || ! "$PY" -c 'import sys' >/dev/null 2>&1; then
        start="$(now)"
        log "creating virtualenv .venv ($(python3 --version 2>&1))"
        rm -rf "$VENV"
        python3 -m venv "$VENV" \
            || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
        log "created .venv in $(elapsed "$start")"
    fi

    digest="$(
        {
            "$PY" -c 'import sys; print(sys.version)'
            cat "$requirements"
            sed -n 's/^[[:space:]]*-r[[:space:]]*//p' "$requirements" | while read -r included; do
                cat "$(dirname "$requirements")/$included"
            done
        } | sha256sum | cut -d' ' -f1
    )"
    stamp="$VENV/.installed-$(basename "$requirements").sha256"
    if [[ -f $stamp && "$(cat "$stamp")" == "$digest" ]]; then
        log "$requirements already installed in .venv"
        return
    fi
    start="$(now)"
    log "installing $requirements into .venv"
    "$PY" -m pip install -qq --disable-pip-version-check -r "$requirements" \
        || die "pip install -r $requirements failed"
    echo "$digest" >"$stamp"
    log "installed $requirements in $(elapsed "$start")"
}
