#!/usr/bin/env bash
# The first command on a fresh Debian 12 machine: installs the packages reaper
# needs to build, builds it in build/, installs it to /usr/local/bin, makes
# its state directory /var/lib/reaper and starts `reaper run` on the embedded
# default configuration.  Options it does not know go to `reaper run`:
#   contrib/setup.sh                 build, install, run
#   contrib/setup.sh --dry-run       ... and run deciding only (recycle.planned)
#   contrib/setup.sh --no-install    leave the binary in build/
# REAPER_BUILD_DIR overrides build/ (developers keep their own build trees).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build=${REAPER_BUILD_DIR:-$top/build}
prefix=/usr/local
state=/var/lib/reaper
install=1
run_args=()
self="$0${*:+ $*}" # for the messages that say how to run this again

say() { printf 'setup: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

usage() {
  cat <<EOF
Usage: contrib/setup.sh [--no-install] [REAPER RUN OPTIONS...]
Installs the build packages (apt-get), builds reaper in ${build#"$top"/}/,
installs it to $prefix/bin/reaper, creates $state (0700) and runs
'reaper run' on the embedded default configuration: every container on
\$DOCKER_HOST or /var/run/docker.sock is recycled after 2h.

  --no-install   run reaper from ${build#"$top"/}/ instead of installing it
  -h, --help     this text
Anything else is passed to 'reaper run' (e.g. --dry-run, --log-format json).
For a self-contained demo with its own Docker engine: contrib/demo.sh
EOF
}

for a in "$@"; do
  case $a in
  --no-install) install=0 ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) run_args+=("$a") ;;
  esac
done

# Root is needed for packages, /usr/local/bin and /var/lib/reaper; the
# build itself runs as whoever called us.
sudo=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null && sudo=sudo
fi
as_root() { # WHY COMMAND...: runs COMMAND as root, or says why it cannot
  local why=$1
  shift
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif [ -n "$sudo" ]; then
    sudo "$@"
  else
    die "needs root to $why, and sudo is not installed: run this as root (su -c '$self')"
  fi
}

# 1. Packages.
if command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; then
  if ! bash "$top/contrib/install-deps.sh"; then
    [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ] ||
      die "installing packages needs root, and sudo is not installed: run this as root, or have the packages above installed"
    if grep -qE 'Temporary failure resolving|Could not resolve|Failed to fetch|Unable to connect|Network is unreachable|Unable to locate package' \
      /tmp/reaper-apt.log 2>/dev/null; then
      die "apt-get could not reach a Debian mirror (no network?). Connect the machine, or point apt at a reachable mirror or proxy, then run this again."
    fi
    die "could not install the build packages (see above); install them, then run this again"
  fi
else
  say "no apt-get here (not Debian?): skipping package installation; the build needs cmake, pkg-config, a C11 compiler and the development files of libuv, libcurl, jansson, libyaml and OpenSSL"
fi

# 2. Build.  The unit tests need cmocka, a test package: build them only when
# it is there, and build only the binary now either way.
tests=OFF
pkg-config --exists cmocka 2>/dev/null && tests=ON
say "building reaper in $build"
log=$(mktemp)
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DREAPER_TESTS=$tests >"$log" 2>&1 || {
  cat "$log" >&2
  die "cmake could not configure the build (output above)"
}
rm -f "$log"
cmake --build "$build" --target reaper -j"$(nproc)" >/dev/null ||
  die "the build failed (errors above)"
bin=$build/reaper

# 3. Install and state directory.
if [ "$install" = 1 ]; then
  as_root "install $prefix/bin/reaper" install -D -m 0755 "$bin" "$prefix/bin/reaper"
  bin=$prefix/bin/reaper
  say "installed $bin ($("$bin" version))"
fi
# The audit log lives here and records every action: nobody else reads it.
if [ "$(id -u)" -eq 0 ] || [ ! -d "$state" ] || [ ! -w "$state" ]; then
  as_root "create $state" install -d -m 0700 "$state"
fi

# 4. Run.
say "starting '$bin run${run_args[*]:+ ${run_args[*]}}' on the embedded default: it watches the Docker engine at \$DOCKER_HOST, else /var/run/docker.sock (here: ${DOCKER_HOST:-unix:///var/run/docker.sock}), and while none answers it says so and retries. For a self-contained demo with its own engine: contrib/demo.sh. Ctrl-C stops it."
if [ "$(id -u)" -ne 0 ] && [ -n "$sudo" ]; then
  # The audit log in $state and the engine's socket belong to root.
  exec sudo --preserve-env=DOCKER_HOST,DOCKER_TLS_VERIFY,DOCKER_CERT_PATH \
    "$bin" run "${run_args[@]}"
fi
exec "$bin" run "${run_args[@]}"
