#!/bin/sh
# fail2ban conformance gate: runs `spylog testcases` on the fail2ban corpus and checks that the
# number of passing samples did not fall below the one recorded in .conformance-record.
#   scripts/conformance.sh [CORPUS_DIR]     (default ../shared/fail2ban-corpus)
# Exit status: 0 at or above the record, 1 below it, 2 when the run produced no summary line.
set -u
cd "$(dirname "$0")/.." || exit 2
corpus=${1:-../shared/fail2ban-corpus}
record=$(tr -dc '0-9' < .conformance-record 2>/dev/null)
out=$(node bin/run.js testcases --fail2ban-dir "$corpus")
status=$?
printf '%s\n' "$out"
summary=$(printf '%s\n' "$out" | tail -n 1)
passed=$(printf '%s\n' "$summary" | sed -n 's/^\([0-9][0-9]*\) passed, [0-9][0-9]* failed$/\1/p')
if [ -z "$passed" ]; then
  echo "conformance: no summary line (testcases exit status $status)" >&2
  exit 2
fi
if [ -z "$record" ]; then
  echo "conformance: $passed passed (no record yet: echo $passed > .conformance-record)"
  exit 0
fi
if [ "$passed" -lt "$record" ]; then
  echo "conformance: $passed passed, below the record of $record" >&2
  exit 1
fi
if [ "$passed" -gt "$record" ]; then
  echo "conformance: $passed passed, above the record of $record: raise it (echo $passed > .conformance-record)"
else
  echo "conformance: $passed passed, at the record"
fi
exit 0
