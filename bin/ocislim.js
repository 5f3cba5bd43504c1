#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript (npm install runs the build through "prepare").
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('ocislim: not built yet; run "npm install" (or "npm run build") in the checkout first\n');
  process.exit(2);
}
const { run } = await import(main.href);
const code = await run(process.argv.slice(2));
// Exit now rather than when the event loop drains: a registry's keep-alive socket can take 150-200 ms to close.
// stdout and stderr are synchronous for files, pipes and terminals on Linux, so nothing written is lost.
process.exit(code);
