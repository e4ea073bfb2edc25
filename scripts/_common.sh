# shellcheck shell=bash
# Helpers shared by scripts/test, scripts/demo and bench/run (sourced, not executed).

if [[ -t 1 ]]; then
    BOLD=$'\033[1m' RED=$'\033[31m' GREEN=$'\033[32m' RESET=$'\033[0m'
else
    BOLD="" RED="" GREEN="" RESET=""
fi
export BOLD RED GREEN RESET

section() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$RESET"; }
info() { printf '    %s\n' "$*"; }
die() {
    printf '%serror:%s %s\n' "$RED" "$RESET" "$*" >&2
    exit 1
}

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root to run: $*"
    fi
}

apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
    info "installing $* with apt-get"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# The first Python >= 3.11 among $PYTHON, python3.11, python3, python.
find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3 python; do
        [[ -n $candidate ]] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    die "Python >= 3.11 not found; install it or set PYTHON=/path/to/python3.11"
}

# ensure_venv DIR: create the virtual environment DIR unless a working one is there.
ensure_venv() {
    local venv=$1
    if [[ -x $venv/bin/python ]] &&
        "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        info "reusing $venv ($("$venv/bin/python" --version))"
        return 0
    fi
    local py
    py=$(find_python)
    info "creating $venv with $py ($("$py" --version))"
    rm -rf "$venv"
    if ! "$py" -m venv "$venv" 2>/dev/null; then
        # Debian ships venv/ensurepip in a package of its own.
        rm -rf "$venv"
        local ver
        ver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        apt_install "python${ver}-venv" || apt_install python3-venv
        "$py" -m venv "$venv"
    fi
}

# install_stamp VENV WHAT...: a fingerprint of pyproject.toml, the interpreter and WHAT.
install_stamp() {
    local venv=$1
    shift
    { cat pyproject.toml; "$venv/bin/python" --version; echo "$@"; } | sha256sum | cut -d' ' -f1
}

# pip_install_once VENV NAME ARGS...: `pip install ARGS` unless the same install already ran
# with this pyproject.toml (remembered in VENV/.shipyard-NAME-install).
pip_install_once() {
    local venv=$1 name=$2
    shift 2
    local stamp="$venv/.shipyard-$name-install" want have=""
    want=$(install_stamp "$venv" "$@")
    [[ -f $stamp ]] && have=$(cat "$stamp")
    if [[ $want == "$have" && ${SHIPYARD_FORCE_INSTALL:-0} != 1 ]]; then
        info "pyproject.toml unchanged since the last install; skipping pip install $*"
        return 0
    fi
    info "pip install $*"
    "$venv/bin/python" -m pip install --quiet --progress-bar off "$@"
    echo "$want" >"$stamp"
}

# Whether the install stamped NAME is current (see pip_install_once).
install_is_current() {
    local venv=$1 name=$2
    shift 2
    local stamp="$venv/.shipyard-$name-install"
    [[ -f $stamp && $(cat "$stamp") == "$(install_stamp "$venv" "$@")" ]]
}
