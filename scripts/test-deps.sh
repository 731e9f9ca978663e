#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (nothing else): strace (proves the nonce
# ledger fsyncs before a share is released), iproute2 (network-namespace tests), chromium
# (browser tests in test/browser, driven by playwright-core; `npx playwright install` needs
# internet access CI does not have, so we use Debian's build at /usr/bin/chromium) and
# prometheus (its promtool checks and unit-tests deploy/monitoring's alert rules; the server the
# package also ships is not started: a policy-rc.d forbids service starts during the install)
# softhsm2 (a PKCS#11 token in a temp directory for the HSM KEK tests) and postgresql (a server
# started by the tests in a temp directory as an unprivileged user; its own service is not started).
# Idempotent; needs root (CI runs as root). `npm test` runs it first (pretest): with everything
# present it returns at once; otherwise it installs as root, or says in one line what to run.
set -euo pipefail
need=()
command -v strace >/dev/null 2>&1 || need+=(strace)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: the tests need ${need[*]}: run \`sudo bash scripts/test-deps.sh\` (or apt-get install ${need[*]}) once, then npm test" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get install -y -qq --no-install-recommends "${need[@]}"
