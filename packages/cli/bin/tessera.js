#!/usr/bin/env node
// The `tessera` command. This launcher is in git, so the first `npm ci` links it even though
// dist/ is built afterwards (by `prepare`); it runs the compiled entry point.
import '../dist/bin.js';
