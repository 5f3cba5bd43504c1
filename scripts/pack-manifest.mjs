#!/usr/bin/env node
// The package.json that consumers get has no "prepare": the tarball ships dist/ already built, and npm 11 warns about
// every install script a consumer has not allowed ("install scripts not yet covered by allowScripts"). A checkout
// keeps it, so that `npm ci` compiles. `prepack` runs `strip` (after building), `postpack` runs `restore`.
import { copyFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const manifest = join(root, 'package.json');
const backup = join(root, '.package.json.prepack');
const mode = process.argv[2];

// A pack that failed before postpack left the stripped manifest: put the original back first.
if (existsSync(backup)) renameSync(backup, manifest);
if (mode === 'strip') {
  copyFileSync(manifest, backup);
  const text = readFileSync(manifest, 'utf8');
  const pkg = JSON.parse(text);
  delete pkg.scripts.prepare;
  writeFileSync(manifest, JSON.stringify(pkg, null, 2) + (text.endsWith('\n') ? '\n' : ''));
} else if (mode !== 'restore') {
  process.stderr.write('usage: pack-manifest.mjs strip|restore\n');
  process.exit(2);
}
