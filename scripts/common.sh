# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared by scripts/demo and scripts/test (sourced, not run): installs the Debian packages that
# are missing and knows where the source and build trees are.
#
# The package mirror is whatever apt is configured with on this machine; nothing here names one.

set -euo pipefail

DIFFUSION_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Every build configuration has its own tree under this directory (gcc-release, gcc-asan, clang).
DIFFUSION_BUILD_DIR="${DIFFUSION_BUILD_DIR:-$DIFFUSION_ROOT/build}"
[[ "$DIFFUSION_BUILD_DIR" == /* ]] || DIFFUSION_BUILD_DIR="$PWD/$DIFFUSION_BUILD_DIR"
# The g++ Release tree serves both scripts, so the demo reuses what the tests built and the other
# way round.
# shellcheck disable=SC2034 # used by the scripts that source this file
DIFFUSION_RELEASE_DIR="$DIFFUSION_BUILD_DIR/gcc-release"

# Compiler, build tool and CMake, and the header-only libraries every configuration needs.
# shellcheck disable=SC2034 # used by the scripts that source this file
DIFFUSION_BASE_PACKAGES=(g++ make cmake pkg-config libeigen3-dev libxtensor-dev libstb-dev)

diffusion_say() { printf '==> %s\n' "$*"; }
diffusion_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# All cores unless DIFFUSION_JOBS says otherwise.
diffusion_cores() { echo "${DIFFUSION_JOBS:-$(nproc 2>/dev/null || echo 2)}"; }

# Installs the named Debian packages that are not installed yet. Runs `apt-get update` first, and
# only when something is missing, so a machine that has everything never touches the network.
diffusion_require_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    diffusion_say "No dpkg/apt here: not installing anything; the build needs the equivalents of: $*"
    return 0
  fi
  local missing=() pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]} == 0)); then
    diffusion_say "All required Debian packages are installed"
    return 0
  fi

  local sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 ||
      diffusion_die "missing Debian packages: ${missing[*]}; run this script as root or install them first"
    sudo=(sudo)
  fi
  diffusion_say "Installing missing Debian packages: ${missing[*]}"
  # No questions (CI has no stdin), and no recommended extras: only what the build needs.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}" </dev/null
}

# Build-tool flag that keeps building the other targets after one fails (make and Ninja), for
# the build tree given as the argument.
diffusion_keep_going() {
  case "$(sed -n 's/^CMAKE_GENERATOR:INTERNAL=//p' "$1/CMakeCache.txt")" in
    *Makefiles) echo -k ;;
    Ninja*) echo "-k 0" ;;
  esac
}

# diffusion_configure DIR CMAKE_OPTIONS...: configures the build tree DIR with those options.
diffusion_configure() {
  local dir="$1"
  shift
  diffusion_say "Configuring ${dir#"$DIFFUSION_ROOT"/}"
  cmake -S "$DIFFUSION_ROOT" -B "$dir" "$@"
}
