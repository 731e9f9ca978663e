#!/usr/bin/env bash
# Regenerates the web apps' pictures in docs/images/ from their browser tests
# (test/browser/wallet.browser.test.ts and story.browser.test.ts write one screenshot per step to
# $TESSERA_SCREENSHOTS).
set -euo pipefail
cd "$(dirname "$0")/.."
shots=$(mktemp -d)
trap 'rm -rf "$shots"' EXIT
npx tsc -b
TESSERA_SCREENSHOTS="$shots" npx vitest run test/browser/wallet.browser.test.ts test/browser/story.browser.test.ts
mkdir -p docs/images
for f in 3-key 5-paid-offline 7-completed; do cp "$shots/$f.png" "docs/images/wallet-$f.png"; done
cp "$shots/console-2-completed.png" docs/images/console.png
echo "docs/images/wallet-*.png and console.png updated"
