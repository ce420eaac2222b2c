#!/usr/bin/env bash
# A debootstrapped Debian 12 for the packaging tests: the fresh machine a
# .deb is installed on, and the base of the container image.  Made once per
# test run and shared by the tests of that run (no registry can be reached:
# this is how a `debian:bookworm-slim` comes to exist in a private engine).
# Source this file, then:
#   debian_rootfs            prints the rootfs' path, debootstrapping it first
#                            (minbase; the host's apt sources; ~1-2 min)
#   debian_import NAME       imports it into $DOCKER_HOST's engine as NAME
#   debian_import_slim NAME  imports it as a -slim image: documentation, man
#                            pages and locales left out and kept out of later
#                            installs (dpkg path-exclude), as Debian's own
#                            bookworm-slim does
# DEBIAN_CACHE: where the rootfs lives; tests/integration/run.sh sets it under
# its run directory, so the whole run shares one.  Concurrent callers wait for
# the first (flock).

DEBIAN_CACHE=${DEBIAN_CACHE:-${TEST_RUN_DIR:-/tmp/reaper-debian.$$}/debian-12}

debian_rootfs() {
  local r=$DEBIAN_CACHE/rootfs
  mkdir -p "$DEBIAN_CACHE"
  (
    flock 9
    [ -f "$DEBIAN_CACHE/done" ] && exit 0
    command -v debootstrap >/dev/null ||
      { echo "debian: debootstrap is not installed (contrib/install-deps.sh --test)" >&2; exit 1; }
    rm -rf "$r"
    local mirror
    mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
    debootstrap --variant=minbase bookworm "$r" ${mirror:+"$mirror"} \
      >"$DEBIAN_CACHE/debootstrap.log" 2>&1 ||
      { echo "debian: debootstrap failed; its log: $DEBIAN_CACHE/debootstrap.log" >&2
        tail -n 20 "$DEBIAN_CACHE/debootstrap.log" >&2; exit 1; }
    # apt inside sees the host's mirrors (and with `--network host`, its network).
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
      cp /etc/apt/sources.list.d/debian.sources "$r/etc/apt/sources.list.d/"
      : >"$r/etc/apt/sources.list"
    fi
    rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/*
    touch "$DEBIAN_CACHE/done"
  ) 9>"$DEBIAN_CACHE/lock" || return 1
  echo "$r"
}

debian_import() { # NAME
  local r
  r=$(debian_rootfs) || return 1
  tar -C "$r" -c . | docker import - "$1" >/dev/null
}

# What debuerreotype's --slimify leaves out of debian:*-slim.
DEBIAN_SLIM_EXCLUDES=(/usr/share/doc/ /usr/share/man/ /usr/share/info/
  /usr/share/locale/ /usr/share/groff/ /usr/share/lintian/ /usr/share/linda/)

debian_import_slim() { # NAME
  local r ctx
  r=$(debian_rootfs) || return 1
  ctx=$(mktemp -d)
  mkdir -p "$ctx/etc/dpkg/dpkg.cfg.d"
  {
    echo "# as in Debian's -slim images: no documentation, manuals, locales"
    for d in "${DEBIAN_SLIM_EXCLUDES[@]}"; do echo "path-exclude $d*"; done
    echo "path-include /usr/share/doc/*/copyright"
    echo "path-include /usr/share/locale/locale.alias"
  } >"$ctx/etc/dpkg/dpkg.cfg.d/docker-slim"
  local ex=()
  for d in "${DEBIAN_SLIM_EXCLUDES[@]}"; do ex+=(--exclude=".${d%/}/*"); done
  # The rootfs, less what slim leaves out, plus the dpkg rule: one archive.
  tar -c "${ex[@]}" -C "$r" . -C "$ctx" ./etc/dpkg/dpkg.cfg.d/docker-slim |
    docker import - "$1" >/dev/null
  local rc=$?
  rm -rf "$ctx"
  return $rc
}
