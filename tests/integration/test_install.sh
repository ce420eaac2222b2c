#!/usr/bin/env bash
# `cmake --install` and what it installs, kept in step with the code:
#  - reaper(1) and reaper.yaml(5) are clean under `mandoc -T lint` and
#    `man --warnings`;
#  - reaper(1) has every command of `reaper --help`, every option of
#    `reaper CMD --help` (and names no option that no command takes), the
#    exit codes, every signal the agent handles and every environment
#    variable the code reads;
#  - reaper.yaml(5) has every key the parser knows, asked of the parser
#    itself (its "unknown key ... (known: ...)" at each level), each in the
#    section of its level, with a default (or "required") and an example;
#  - the installed unit names the binary under the install prefix and passes
#    `systemd-analyze verify` (its man: links resolve to the installed pages).
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
source "$here/lib.sh"
build=${REAPER_BUILD_DIR:-$top/build}
bin=$build/reaper
man1=$top/contrib/man/reaper.1
man5=$top/contrib/man/reaper.yaml.5

# --- lint ----------------------------------------------------------------------
mandoc -T lint -W warning "$man1" "$man5" >"$T/mandoc.txt" 2>&1 || { cat "$T/mandoc.txt"; fail "mandoc -T lint"; }
[ ! -s "$T/mandoc.txt" ] || { cat "$T/mandoc.txt"; fail "mandoc -T lint has warnings"; }
for p in "$man1" "$man5"; do
  LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$p" 2>"$T/man.err" >/dev/null
  [ ! -s "$T/man.err" ] || { cat "$T/man.err"; fail "man --warnings $(basename "$p")"; }
done

# The page's text with \- read as -, one line per source line.
sed 's/\\-/-/g' "$man1" >"$T/man1"
in_page() { grep -qE -- "(^|[^a-zA-Z0-9-])$1([^a-zA-Z0-9-]|$)" "$T/man1"; }

# --- commands and options ---------------------------------------------------------
"$bin" --help >"$T/help"
commands=$(awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }' "$T/help")
[ -n "$commands" ] || fail "no commands in reaper --help"
: >"$T/all-options"
for c in $commands; do
  grep -qE "^\.B $c$" "$T/man1" || fail "reaper(1) has no item for the command $c"
  "$bin" "$c" --help >"$T/help.$c"
  opts=$(grep -oE -- '(^|[ [,])--?[a-zA-Z][a-zA-Z-]*' "$T/help.$c" | sed -E 's/^[ [,]//' | sort -u || true)
  for o in $opts; do
    echo "$o" >>"$T/all-options"
    in_page "$o" || fail "reaper(1) lacks $c's option $o"
  done
  log "$c: $(echo $opts)"
done
# Every option the page names before EXIT STATUS is one that some command takes.
sed -n '/^\.SH SYNOPSIS/,/^\.SH EXIT STATUS/p' "$T/man1" | grep -oE -- '(^|[ [(])--?[a-z][a-z-]*' |
  sed -E 's/^[ [(]//' | sort -u >"$T/page-options"
while read -r o; do
  case $o in --help | --version | -h) continue ;; esac
  grep -qx -- "$o" "$T/all-options" || fail "reaper(1) names $o, which no command's --help has"
done <"$T/page-options"

# Exit codes: those --help names.
for code in 0 1 2; do
  sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' "$T/man1" | grep -cx >/dev/null "\.B $code" || fail "reaper(1) lacks exit status $code"
done
# Signals: every one the agent handles.
sigs=$(grep -oE 'uv_signal_start\([^;]*SIG[A-Z0-9]+' "$top/src/agent.c" | grep -oE 'SIG[A-Z0-9]+$' | sort -u)
[ -n "$sigs" ] || fail "no uv_signal_start in src/agent.c"
for s in $sigs; do
  sed -n '/^\.SH SIGNALS/,/^\.SH /p' "$T/man1" | grep -c >/dev/null "$s" || fail "reaper(1) SIGNALS lacks $s"
done
# Environment: every variable the code reads, and those libsystemd reads.
vars=$(grep -rhoE 'getenv\("[A-Z_]+"\)' "$top/src" "$top/providers" | grep -oE '[A-Z_]{2,}' | grep -v '^getenv$' | sort -u)
for v in $vars WATCHDOG_USEC WATCHDOG_PID; do
  sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' "$T/man1" | grep -cw >/dev/null "$v" || fail "reaper(1) ENVIRONMENT lacks $v"
done
log "signals: $(echo $sigs); environment: $(echo $vars)"

# --- configuration keys -----------------------------------------------------------
# The parser's own list at each level: a key it cannot know, and its answer.
known_keys() { # LEVEL (a path the error names, "" for the top) < YAML
  cat >"$T/k.yaml"
  local out
  out=$("$bin" check-config --allow-insecure-config -c "$T/k.yaml" 2>&1) && fail "a bogus key was accepted at '$1'"
  echo "$out" | grep -c >/dev/null ": ${1:+$1: }unknown key 'qqqqzzzz' (known: " || fail "at '$1': $out"
  echo "$out" | sed -E 's/.*\(known: ([^)]*)\).*/\1/' | tr -d ' ' | tr ',' '\n'
}
P='providers: [{name: a, type: docker}]'
Q='policies: [{name: p, max_age: 1h}]'
declare -A section
section[top]=$(printf 'qqqqzzzz: 1\n%s\n%s\n' "$P" "$Q" | known_keys "")
section[AGENT]=$(printf 'agent: {qqqqzzzz: 1}\n%s\n%s\n' "$P" "$Q" | known_keys agent)
section[PROVIDERS]=$(printf 'providers: [{name: a, type: docker, qqqqzzzz: 1}]\n%s\n' "$Q" | known_keys 'providers\[0\]')
section[POLICIES]=$(printf '%s\npolicies: [{name: p, max_age: 1h, qqqqzzzz: 1}]\n' "$P" | known_keys 'policies\[0\]')
section[match]=$(printf '%s\npolicies: [{name: p, max_age: 1h, match: {qqqqzzzz: 1}}]\n' "$P" | known_keys 'policies\[0\]\.match')
section[window]=$(printf '%s\npolicies: [{name: p, max_age: 1h, window: {qqqqzzzz: 1, start: "01:00", end: "02:00"}}]\n' "$P" | known_keys 'policies\[0\]\.window')
section[update]=$(printf '%s\npolicies: [{name: p, max_age: 1h, update: {qqqqzzzz: 1}}]\n' "$P" | known_keys 'policies\[0\]\.update')
section[EXCLUDE]=$(printf '%s\n%s\nexclude: {qqqqzzzz: 1}\n' "$P" "$Q" | known_keys exclude)
section[NOTIFY]=$(printf '%s\n%s\nnotify: [{webhook: "http://x/", qqqqzzzz: 1}]\n' "$P" "$Q" | known_keys 'notify\[0\]')
# A new table of keys in the parser is a new level for this list.
tables=$(cat "$top"/src/config*.c | grep -c 'keys\[\] = {')
assert_eq "${#section[@]}" "$tables" "levels checked here vs the parser's key tables (src/config*.c)"

# The page's section for a level: from its heading to the next one.
page_section() { # HEADING
  awk -v h="$1" '/^\.S[HS] / { on = ($2 == h) ; next } on' "$man5" | sed 's/\\-/-/g'
}
# The item of a key in a section: from `.B key` after .TP to the next item.
item() { # HEADING KEY
  # (awk reads to the end: an early exit would leave the writer a SIGPIPE,
  # which pipefail makes the test's end once the section outgrows a pipe)
  page_section "$1" | awk -v k="$2" '/^\.TP$/ { tp = 1; if (on) { on = 0; done = 1 }; next } !done && tp && $0 == ".B " k { on = 1 } { tp = 0 } on'
}
n_keys=0
for s in "${!section[@]}"; do
  for k in ${section[$s]}; do
    n_keys=$((n_keys + 1))
    if [ "$s" = top ]; then
      grep -qx "\.SH ${k^^}" "$man5" || fail "reaper.yaml(5) has no section for the top-level key $k"
      continue
    fi
    it=$(item "$s" "$k")
    [ -n "$it" ] || fail "reaper.yaml(5) section $s lacks the key $k"
    grep -q 'Example:' <<<"$it" || fail "reaper.yaml(5) $s.$k has no example"
    grep -qE 'default|required' <<<"$it" || fail "reaper.yaml(5) $s.$k names no default"
  done
done
log "reaper.yaml(5): $n_keys keys in ${#section[@]} levels"

# --- cmake --install and the unit ------------------------------------------------
prefix=$T/prefix
cmake --build "$build" --target reaper_docs >"$T/docs.log" 2>&1 || { cat "$T/docs.log"; fail "building the man pages"; }
cmake --install "$build" --prefix "$prefix" >"$T/install.log" 2>&1 || { cat "$T/install.log"; fail "cmake --install"; }
unit=$prefix/lib/systemd/system/reaper.service
for f in "$prefix/bin/reaper" "$unit" "$prefix/share/man/man1/reaper.1.gz" \
  "$prefix/share/man/man5/reaper.yaml.5.gz" "$prefix/share/doc/reaper/examples/full.yaml"; do
  [ -e "$f" ] || fail "cmake --install did not install $f"
done
grep -q "^ExecStart=$prefix/bin/reaper run -c /etc/reaper/config.yaml$" "$unit" ||
  fail "the installed unit's ExecStart: $(grep ^ExecStart= "$unit")"
grep -q '/usr/local/bin' "$unit" && fail "the installed unit still names /usr/local/bin"
grep -qx 'Type=notify' "$unit" && grep -qE '^WatchdogSec=[1-9]' "$unit" || fail "the unit is not Type=notify with a watchdog"
MANPATH=$prefix/share/man systemd-analyze verify "$unit" >"$T/verify.txt" 2>&1 || { cat "$T/verify.txt"; fail "systemd-analyze verify"; }
[ ! -s "$T/verify.txt" ] || { cat "$T/verify.txt"; fail "systemd-analyze verify warns"; }
# The unit as the repository has it, for a source install to /usr/local/bin:
# the same unit but for the binary's place.
diff <(sed "s#$prefix/bin/reaper#/usr/local/bin/reaper#g" "$unit") "$top/contrib/reaper.service" >/dev/null ||
  fail "the installed unit differs from contrib/reaper.service beyond the binary's path"
log "ok: $(wc -l <"$T/all-options") options of $(echo $commands | wc -w) commands, $n_keys keys, the unit verified"
