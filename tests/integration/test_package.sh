#!/usr/bin/env bash
# What operators install: the Debian package and the container image.
# Self-contained: its own dockerd (never the suite's, never the machine's), a
# debootstrapped Debian 12 (tests/lib/debian.sh, one per test run) as the
# fresh machine the .deb is installed on and, slimmed, as the image's
# debian:bookworm-slim, built without a registry.
#  1. `cmake --build build --target package`: reaper_VERSION_ARCH.deb with
#     the binary, the unit (its paths under /usr), the man pages and the
#     examples; clean under lintian but for the tags explained below.
#  2. `apt-get install ./reaper_*.deb` on a fresh Debian 12 pulls in its
#     libraries; `reaper check-config` and `man reaper` work there.
#  3. contrib/Dockerfile builds an image under 120 MB; run with the engine's
#     socket, on the embedded default, it knows its own container and leaves
#     it out; as the unprivileged user in the socket's group, with a short
#     max_age, it recycles another container and never itself, and its audit
#     log (in the volume) verifies.
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
source "$here/lib.sh"
# One Debian per test run (tests/integration/run.sh's TEST_RUN_DIR), else
# this test's own.
export DEBIAN_CACHE=${DEBIAN_CACHE:-${TEST_RUN_DIR:-$T}/debian-12}
source "$top/tests/lib/debian.sh"

build=${REAPER_BUILD_DIR:-$top/build}
[ -f "$build/CMakeCache.txt" ] || fail "$build is not configured (tests/run.sh builds it)"

# --- 1. the package ---------------------------------------------------------
log "building the package in $build"
rm -f "$build"/reaper_*.deb
cmake -S "$top" -B "$build" >"$T/configure.log" 2>&1 || { cat "$T/configure.log"; fail "cmake configure"; }
cmake --build "$build" --target package -j"$(nproc)" >"$T/package.log" 2>&1 ||
  { tail -n 40 "$T/package.log"; fail "cmake --build --target package"; }
version=$("$build/reaper" version | awk '{print $2}')
arch=$(dpkg --print-architecture)
deb=$build/reaper_${version}_${arch}.deb
[ -f "$deb" ] || fail "no $deb (found: $(ls "$build"/*.deb 2>/dev/null))"
log "package: $(basename "$deb"), $(stat -c %s "$deb") bytes"

dpkg-deb -c "$deb" | awk '{print $6}' | sed 's#^\./#/#' >"$T/contents"
for f in /usr/bin/reaper /lib/systemd/system/reaper.service \
  /usr/share/man/man1/reaper.1.gz /usr/share/man/man5/reaper.yaml.5.gz \
  /usr/share/doc/reaper/copyright /usr/share/doc/reaper/changelog.gz \
  /usr/share/doc/reaper/examples/full.yaml /usr/share/doc/reaper/examples/minimal.yaml; do
  grep -qx "$f" "$T/contents" || fail "the package lacks $f"
done
depends=$(dpkg-deb -f "$deb" Depends)
log "Depends: $depends"
for lib in libuv1 libcurl4 libjansson4 libyaml-0-2 libssl3 libsystemd0 tzdata; do
  [[ ",$depends," == *", $lib"[\ ,]* || "$depends" == "$lib"[\ ,]* ]] ||
    fail "Depends lacks $lib: $depends"
done
mkdir -p "$T/x"
dpkg-deb -x "$deb" "$T/x"
grep -q '^ExecStart=/usr/bin/reaper run ' "$T/x/lib/systemd/system/reaper.service" ||
  fail "the packaged unit does not run /usr/bin/reaper: $(grep ^Exec "$T/x/lib/systemd/system/reaper.service")"
grep -q '/usr/local' "$T/x/lib/systemd/system/reaper.service" &&
  fail "the packaged unit still names /usr/local"

# lintian: no error and no warning.  Two informational tags remain, each
# for a reason:
#  binary-has-unneeded-section: the .comment section (the compiler's
#    version, 40 bytes) that CPack's plain `strip` leaves and debhelper's
#    dh_strip removes;
#  package-supports-alternative-init-but-no-init.d-script: reaper runs under
#    systemd, in a container or by hand, and ships no SysV init script.
lintian --pedantic --display-info "$deb" >"$T/lintian.txt" 2>&1 || true
log "lintian: $(wc -l <"$T/lintian.txt") tags"
cat "$T/lintian.txt"
unexplained=$(grep -vE '^I: reaper: (binary-has-unneeded-section|package-supports-alternative-init-but-no-init\.d-script) ' "$T/lintian.txt" | grep -E '^[EWIPXO]:' || true)
[ -z "$unexplained" ] || fail "lintian: $unexplained"

# --- a private engine and Debian 12 ---------------------------------------
ENGINE_DIR=$T/e
source "$top/tests/lib/engine.sh"
# The engine goes with its containers; lib.sh's cleanup has nothing left to ask it.
on_exit 'engine_stop; docker() { :; }'
engine_start || fail "could not start a private dockerd"
engine_build_images || fail "could not build the test images"
log "debootstrapping Debian 12 (or reusing this run's) in $DEBIAN_CACHE"
debian_rootfs >/dev/null || fail "debootstrap"
debian_import reaper-test/debian:12 || fail "docker import of the rootfs"
debian_import_slim debian:bookworm-slim || fail "docker import of the slim rootfs"

# --- 2. the package on a fresh Debian 12 ------------------------------------
log "apt-get install ./$(basename "$deb") on a fresh Debian 12"
mkdir -p "$T/deb"
cp "$deb" "$T/deb/"
docker run --rm --network host -v "$T/deb:/deb:ro" -w /deb reaper-test/debian:12 bash -euc '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends ./reaper_*.deb man-db >/tmp/apt.log 2>&1 ||
    { tail -n 30 /tmp/apt.log; exit 1; }
  echo "installed: $(dpkg-query -W -f "\${Package} \${Version} \${Status}" reaper)"
  reaper version
  reaper check-config
  reaper check-config -c /usr/share/doc/reaper/examples/minimal.yaml
  echo "state dir: $(stat -c "%a %U" /var/lib/reaper)"
  MANPAGER=cat MANWIDTH=80 man reaper >/tmp/man1 2>/tmp/man1.err
  MANPAGER=cat MANWIDTH=80 man 5 reaper.yaml >/tmp/man5 2>/tmp/man5.err
  head -n 4 /tmp/man1; grep -c . /tmp/man1 /tmp/man5
  grep -q "check-config" /tmp/man1 && grep -q "audit_rotate_size" /tmp/man5
  test ! -s /tmp/man1.err && test ! -s /tmp/man5.err
  test "$(stat -c %a /var/lib/reaper)" = 700
' >"$T/deb.log" 2>&1 || { cat "$T/deb.log"; fail "the package did not install and run on Debian 12"; }
cat "$T/deb.log"
grep -q '^reaper '"$version"'$' "$T/deb.log" || fail "reaper version on Debian 12"
grep -q '^<embedded default>: ok' "$T/deb.log" || fail "check-config of the embedded default"

# --- 3. the image -------------------------------------------------------------
log "docker build -f contrib/Dockerfile (--network host)"
start=$(date +%s)
DOCKER_BUILDKIT=0 docker build --network host -f "$top/contrib/Dockerfile" \
  -t reaper-test/reaper:pkg "$top" >"$T/build.log" 2>&1 ||
  { tail -n 40 "$T/build.log"; fail "docker build"; }
size=$(docker image inspect -f '{{.Size}}' reaper-test/reaper:pkg)
log "image built in $(($(date +%s) - start))s: $size bytes ($((size / 1000000)) MB)"
[ "$size" -lt 120000000 ] || fail "the image is $size bytes, over 120 MB"
[ "$(docker image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' reaper-test/reaper:pkg)" = '["reaper"] ["run"]' ] ||
  fail "entrypoint and command: $(docker image inspect -f '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' reaper-test/reaper:pkg)"
sock=$ENGINE_DIR/docker.sock

# The embedded default, with nothing but the socket: its own container is
# known and left out.
docker run -d --name reaper-default -l "$TEST_LABEL" -v "$sock:/var/run/docker.sock" \
  reaper-test/reaper:pkg >/dev/null
self=$(cid reaper-default)
names_itself() { docker logs reaper-default 2>&1 | grep -c >/dev/null "reaper runs in container ${self:0:12}, which it never touches"; }
for _ in $(seq 150); do names_itself && break; sleep 0.2; done
names_itself || {
  docker logs reaper-default 2>&1 | tail -n 20
  docker exec reaper-default grep -E ' /etc/(hostname|hosts|resolv.conf) ' /proc/self/mountinfo
  fail "the default agent does not name its own container ${self:0:12}"
}
docker exec reaper-default reaper plan >"$T/plan.txt" 2>&1 || { cat "$T/plan.txt"; fail "plan in the container"; }
cat "$T/plan.txt"
grep -E "^local +container +reaper-default .*excluded: reaper's own container" "$T/plan.txt" >/dev/null ||
  fail "plan does not leave reaper's own container out"
docker rm -f reaper-default >/dev/null

# Unprivileged, in the socket's group, with a short max_age for every
# container (no label): another container is recycled, reaper's never.
run victim reaper-test/sleeper:1
victim=$(cid victim)
cat >"$T/config.yaml" <<'YAML'
agent:
  audit_log: /var/lib/reaper/audit.jsonl
  resync: 5s
providers:
  - name: local
    type: docker
policies:
  - name: all
    max_age: 6s
    grace: 1s
YAML
chmod 0644 "$T/config.yaml"
# Unprivileged, as the README says: a state directory the image's user owns.
install -d -o 10001 -g 10001 -m 0700 "$T/state"
docker run -d --name reaper-agent -l "$TEST_LABEL" --user reaper \
  --group-add "$(stat -c %g "$sock")" -v "$sock:/var/run/docker.sock" \
  -v "$T/state:/var/lib/reaper" -v "$T/config.yaml:/etc/reaper/config.yaml:ro" \
  reaper-test/reaper:pkg run -c /etc/reaper/config.yaml >/dev/null
self=$(cid reaper-agent)
log "reaper's container ${self:0:12}, the victim ${victim:0:12}"
wait_for 40 "the victim recycled" sh -c "[ \"\$(docker inspect -f '{{.Id}}' victim 2>/dev/null)\" != '' ] && [ \"\$(docker inspect -f '{{.Id}}' victim)\" != $victim ]"
# Past two of its own max ages, reaper's container still runs, the same one.
sleep 8
docker logs reaper-agent >"$T/reaper.log" 2>&1
running reaper-agent || fail "reaper's container is not running"
assert_eq "$self" "$(cid reaper-agent)" "reaper's container id"
[ "$(docker inspect -f '{{.Config.User}}' reaper-agent)" = reaper ] || fail "not run as reaper"
docker exec reaper-agent id -u | grep -cx >/dev/null 10001 || fail "reaper's uid inside"
docker stop -t 30 reaper-agent >/dev/null
assert_eq 0 "$(docker inspect -f '{{.State.ExitCode}}' reaper-agent)" "reaper's exit code after docker stop"
cp "$T/state/audit.jsonl" "$T/audit.jsonl"
docker run --rm -v "$T/state:/var/lib/reaper" reaper-test/reaper:pkg \
  verify /var/lib/reaper/audit.jsonl || fail "verify of the state directory's audit log"
audit_any recycle.done ".id == \"$victim\"" || fail "no recycle.done of the victim"
if grep -q "$self" "$T/audit.jsonl"; then fail "reaper's own container appears in the audit log"; fi
grep -q "reaper runs in container ${self:0:12}, which it never touches" "$T/reaper.log" ||
  fail "the agent did not say it found its own container"
log "ok: deb installed and ran on Debian 12; image $((size / 1000000)) MB recycled ${victim:0:12}, never ${self:0:12}"
