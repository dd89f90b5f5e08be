#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx(f *testing.F)) of the module for a few
# seconds each: a smoke test that the decoders and parsers we own do not
# panic or break their invariants on fresh inputs. A failing input is written
# to the package's testdata/fuzz/FuzzXxx/ directory: commit it with the fix
# (it then runs with every `go test`).
#
#   FUZZTIME=3s scripts/fuzz-smoke.sh        # per target (default 3s)
#   scripts/fuzz-smoke.sh ./internal/stream  # only these packages
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fuzztime="${FUZZTIME:-3s}"
# minimizing an interesting input can take a minute per input by default
minimize="${FUZZMINIMIZETIME:-1s}"
if (($# > 0)); then
  pkgs=("$@")
else
  mapfile -t pkgs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
    xargs -n1 dirname | sort -u)
fi

count=0
for pkg in "${pkgs[@]}"; do
  mapfile -t targets < <(grep -hE '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' "$pkg"/*_test.go)
  for line in "${targets[@]}"; do
    name="${line#func }"
    name="${name%%(*}"
    echo "==> $pkg $name ($fuzztime)"
    go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$pkg"
    count=$((count + 1))
  done
done
echo "==> fuzz smoke: $count targets passed"
