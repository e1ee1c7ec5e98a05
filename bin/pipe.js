#!/usr/bin/env node
// The `pipe` command. The TypeScript sources are compiled to dist/ by `npm ci` (the prepare script).
// Decoding threads start first (run and backfill), so that their start overlaps loading the CLI.
import { prestartWorkers } from '../dist/engine/prestart.js';

prestartWorkers(process.argv.slice(2));
const { main } = await import('../dist/cli.js');

main(process.argv).then((code) => {
  process.exitCode = code;
});
