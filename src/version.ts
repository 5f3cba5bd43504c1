import { readFileSync } from 'node:fs';

/**
 * The package version (package.json), for --version and the SBOM's creator tool. Found by walking up from this
 * module: dist/src/version.js and the CLI bundle (dist/src/cli/ocislim.cjs) sit at different depths.
 */
export const VERSION = packageVersion();

function packageVersion(): string {
  for (let up = '../'; up.length <= 5 * 3; up += '../') {
    try {
      const p = JSON.parse(readFileSync(new URL(`${up}package.json`, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (p.name === 'ocislim' && p.version) return p.version;
    } catch {
      /* not there: one level up */
    }
  }
  return '0.0.0';
}
