#!/usr/bin/env bash
# Regenerates the browser wallet pictures in docs/images/ from its browser story test
# (test/browser/wallet.browser.test.ts writes one screenshot per step to $TESSERA_SCREENSHOTS).
set -euo pipefail
cd "$(dirname "$0")/.."
shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT
npx tsc -b
TESSERA_SCREENSHOTS="$shots" npx vitest run test/browser/wallet.browser.test.ts
mkdir -p docs/images
for f in 3-key 5-paid-offline 7-completed; do cp "$shots/$f.png" "docs/images/wallet-$f.png"; done
echo "docs/images/wallet-*.png updated"
