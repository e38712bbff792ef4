#!/usr/bin/env bash
# Vagrant provisioning: the same setup and test command as CI (.ci/run → scripts/test).
set -euo pipefail
cd /berth
exec scripts/test
