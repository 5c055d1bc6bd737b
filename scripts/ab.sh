#!/usr/bin/env bash
# A/B of two builds of the rush tool on the same machine in the same minutes: the runs
# alternate (old, new, old, new, ...) so that a drift of the machine's speed hits both alike.
#
#   scripts/ab.sh OLD_RUSH NEW_RUSH RUNS -- <rush arguments, e.g. --store postgres --holds-only ...>
#
# Build the old one from another checkout (or `git stash`, moving new untracked migrations
# aside: the store embeds every file of migrations/). Prints one line per run: the build, holds
# made/s, hold attempts/s, hold p99 (ms), and whether the books balanced; then the means.
set -euo pipefail
OLD=${1:?old rush binary}; NEW=${2:?new rush binary}; RUNS=${3:?runs per build}
shift 3
[ "${1:-}" = "--" ] && shift
declare -A sum_holds sum_attempts
for v in old new; do sum_holds[$v]=0; sum_attempts[$v]=0; done
for _ in $(seq 1 "$RUNS"); do
  for v in old new; do
    bin=$OLD; [ "$v" = new ] && bin=$NEW
    read -r holds attempts p99 ok < <("$bin" "$@" --json --quiet | python3 -c '
import json, sys
r = json.load(sys.stdin)["runs"][0]
print(round(r["holds_per_s"]), round(r["hold_attempts_per_s"]), r["latency"]["hold"]["p99_ms"],
      r["oversold_seats"] == 0 and r["books_balanced"])')
    echo "$v holds/s $holds attempts/s $attempts p99 $p99 books $ok"
    sum_holds[$v]=$(( ${sum_holds[$v]} + holds )); sum_attempts[$v]=$(( ${sum_attempts[$v]} + attempts ))
  done
done
for v in old new; do
  echo "$v mean: holds/s $(( ${sum_holds[$v]} / RUNS )), attempts/s $(( ${sum_attempts[$v]} / RUNS ))"
done
