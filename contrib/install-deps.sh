#!/usr/bin/env bash
# Installs what reaper needs to build, and with --test what its tests need,
# from Debian 12's packages.  Installs only what is missing; says clearly what
# it cannot get.  Run as root (or with sudo available).
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libuv1-dev libcurl4-openssl-dev
  libjansson-dev libyaml-dev libssl-dev libhttp-parser-dev tzdata
  ca-certificates curl protobuf-c-compiler libprotobuf-c-dev libsystemd-dev file)
test_pkgs=(libcmocka-dev docker.io busybox-static file iproute2 clang
  libclang-rt-14-dev valgrind clang-format jq libxml2-utils docker-registry python3 faketime prometheus chromium haproxy
  debootstrap lintian mandoc man-db systemd podman)

want=("${build_pkgs[@]}")
[ "${1:-}" = "--test" ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || {
    echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
    exit 1
  }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/reaper-apt.log 2>&1; then
  $sudo apt-get update -qq >>/tmp/reaper-apt.log 2>&1 || true
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/reaper-apt.log 2>&1 || {
    echo "install-deps: apt-get could not install: ${missing[*]} (log: /tmp/reaper-apt.log)" >&2
    tail -n 20 /tmp/reaper-apt.log >&2
    exit 1
  }
fi
