#!/usr/bin/env bash
# make rehearse: the whole W4 cutover and a rollback drill against the local twin of tvps.
#   twin.up → reset → status → preflight → tag-push (CI publishes) → deploy → smoke →
#   hermes-reinstall → agent-smoke → load + monitor + diagnose → rollback drill →
#   smoke --expect legacy → same-day redeploy refused → status → twin.down
set -euo pipefail
cd "$(dirname "$0")/.."
TWIN=${1:-$PWD/.twin}
V=v0.3.0-w4-cutover
INV=.venv/bin/inv
CFG=(-f "$TWIN/invoke.yaml")
step() { printf '\n== %s\n' "$*"; }

cleanup() { $INV twin.down --dir "$TWIN" || true; }
trap cleanup EXIT

step "twin.up ($TWIN)"
$INV twin.up --dir "$TWIN"
$INV twin.reset --dir "$TWIN"
step "inv status"
$INV "${CFG[@]}" status
step "T+00:00  inv preflight --version $V"
# The status call above is the tool's own: preflight leaves it out of no_traffic (and says so).
$INV "${CFG[@]}" preflight --version "$V"
step "T+00:05  inv tag-push --version $V   (the twin's CI builds and publishes the image)"
$INV "${CFG[@]}" tag-push --version "$V"
step "T+00:05  inv deploy --version $V --yes"
$INV "${CFG[@]}" deploy --version "$V" --yes
step "T+00:15  inv smoke"
$INV "${CFG[@]}" smoke
step "T+00:25  inv hermes-reinstall"
$INV "${CFG[@]}" hermes-reinstall
step "T+00:35  inv agent-smoke"
$INV "${CFG[@]}" agent-smoke
step "§3  traffic, inv monitor --hours 1, inv diagnose   (twin clock at a past OPEN session)"
# twin.load is client traffic: sent at a past twin clock, so the next rehearsal's preflight
# (real clock, no_traffic over the last 10 min) does not see it
$INV twin.clock --dir "$TWIN" --at 2026-05-11T10:00:00+08:00
$INV twin.load --dir "$TWIN" --seconds 5 --rps 10
$INV "${CFG[@]}" monitor --hours 1 || echo "(monitor says investigate: see above)"
$INV "${CFG[@]}" diagnose || echo "(diagnose found symptoms: see above)"
$INV twin.clock --dir "$TWIN" --clear
step "§2  rollback drill: inv rollback --version $V --yes"
$INV "${CFG[@]}" rollback --version "$V" --yes --reason "rehearsal drill"
step "§2.4  inv smoke --expect legacy"
$INV "${CFG[@]}" smoke --expect legacy
step "no retry today: inv deploy must refuse"
if $INV "${CFG[@]}" deploy --version "$V" --yes; then
  echo "rehearse: deploy after a same-day rollback was NOT refused" >&2
  exit 1
fi
step "inv status"
$INV "${CFG[@]}" status
step "rehearsal done: cutover and rollback drill passed"
