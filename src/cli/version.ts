import { readFileSync } from 'node:fs';

/** The package version (package.json), for --version and the SBOM's creator tool. */
export const VERSION = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
