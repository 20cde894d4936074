#!/usr/bin/env bash
# make rehearse: bring the twin up, drive the tasks against it, tear it down.
# Until the cutover phases land this runs: twin.up → status → smoke → load + monitor + diagnose → lock drill → twin.down.
set -euo pipefail
cd "$(dirname "$0")/.."
TWIN=${1:-$PWD/.twin}
INV=.venv/bin/inv
CFG=(-f "$TWIN/invoke.yaml")

cleanup() { $INV twin.down --dir "$TWIN" || true; }
trap cleanup EXIT

echo "== twin.up ($TWIN)"
$INV twin.up --dir "$TWIN"
echo "== inv status"
$INV "${CFG[@]}" status
echo "== inv smoke --expect legacy (v0.2.0 serves the old envelope)"
$INV "${CFG[@]}" smoke --expect legacy
echo "== traffic, then inv monitor --hours 1 and inv diagnose"
$INV twin.load --dir "$TWIN" --seconds 5 --rps 10
$INV "${CFG[@]}" monitor --hours 1
$INV "${CFG[@]}" diagnose || echo "(diagnose found symptoms: see above)"
echo "== lock drill"
$INV "${CFG[@]}" lock --acquire --version v0.3.0-w4-cutover --reason "rehearsal"
$INV "${CFG[@]}" lock
$INV "${CFG[@]}" lock --release --yes
echo "== rehearsal done"
