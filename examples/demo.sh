#!/usr/bin/env bash
# `make demo`: mtasts on a simulated mail internet (examples/scenarios/demo.toml).
# Starts the lab (real DNS, HTTPS and SMTP servers on loopback), runs demo-steps.sh with
# MTASTS_NAMESERVER, MTASTS_CA_FILE and the port overrides set, then stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
exec mtasts lab run --scenario examples/scenarios/demo.toml -- bash examples/demo-steps.sh
