#!/usr/bin/env bash
# The demo's steps; run inside `mtasts lab run` (see demo.sh). Broken domains make
# commands exit non-zero on purpose, so each step shows its exit status and goes on.
set -uo pipefail
cd "$(dirname "$0")"

step() {
    printf '\n\033[1m$ %s\033[0m\n' "$*"
    "$@"
    printf '\033[2m(exit status %s)\033[0m\n' "$?"
}

echo "== 1. Before publishing: lint a record and a policy (domain administrator)"
step mtasts lint sts-record lint/good.sts-record.txt
step mtasts lint policy lint/bad.policy.txt
step mtasts lint report lint/rfc8460-report.json

echo
echo "== 2. Before sending: discover, fetch and validate each domain's policy (MTA operator)"
for domain in good.test wild.test plain.test expired.test moved.test html.test twice.test flaky.test; do
    step mtasts query "$domain"
done

echo
echo "== 3. The whole chain, as a monitoring check (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)"
step mtasts check good.test badmx.test oldtls.test missing.test

echo
echo "== 4. The reports come home: an attacked session, reported by https and signed mail, received once"
step python tlsrpt-receive-loop.py
