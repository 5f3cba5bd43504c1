#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript (npm install runs the build through "prepare").
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('ocislim: not built yet; run "npm install" (or "npm run build") in the checkout first\n');
  process.exit(2);
}
const { run, exitWhenFlushed } = await import(main.href);
// Exits once stdout and stderr are flushed, without waiting for a registry's keep-alive socket to close.
await exitWhenFlushed(await run(process.argv.slice(2)));
