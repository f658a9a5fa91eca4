#!/usr/bin/env bash
# The demo's steps; run inside `mtasts lab run` (see demo.sh). Broken domains make
# commands exit non-zero on purpose, so each step shows its exit status and goes on.
set -uo pipefail
cd "$(dirname "$0")"

# Bold commands and dim exit statuses on a terminal only, never with NO_COLOR set
# (https://no-color.org) or when the output goes to a file or a pipe.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    bold=$'\033[1m' dim=$'\033[2m' plain=$'\033[0m'
else
    bold='' dim='' plain=''
fi

step() {
    printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"
    "$@"
    printf '%s(exit status %s)%s\n' "$dim" "$?" "$plain"
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
