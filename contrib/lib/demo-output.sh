# What the demos print, one way: numbered steps, notes, ticks and crosses,
# indented output.  Sourced by contrib/demo.sh and
# contrib/fresh-content-demo.sh, after they set the colours B, G, R and N
# (empty when the output is not a terminal).
step_no=0
step() {
  step_no=$((step_no + 1))
  printf '\n%s== %d. %s%s\n' "$B" "$step_no" "$*" "$N"
}
note() { printf '   %s\n' "$*"; }
ok() { printf '   %s✔%s %s\n' "$G" "$N" "$*"; }
die() {
  printf '   %s✘ %s%s\n' "$R" "$*" "$N" >&2
  exit 1
}
indent() { sed -u 's/^/   /'; }
