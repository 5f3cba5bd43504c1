import { readFileSync } from 'node:fs';
import { Image } from '../oci/image.js';
import { Platform } from '../oci/platform.js';
import { isLocalRef, parseLocalRef, readLocalImage } from '../oci/location.js';
import { ClientOptions, RegistryClient } from '../registry/client.js';
import { Credential } from '../registry/credentials.js';
import { RegistryError } from '../registry/errors.js';
import { MountSource, pushImage } from '../registry/push.js';
import { pullImage } from '../registry/pull.js';
import { formatReference } from '../registry/reference.js';
import { parseRef, pushTargets } from './refs.js';
import { UsageError, UserError } from './errors.js';
import { TtyProgress } from './progress.js';
import type { RegistryArgs } from './options.js';

export type { RegistryArgs } from './options.js';

/** Reads the password from stdin (never from a flag, so it stays out of shell history and process lists). */
function readStdinPassword(): string {
  try {
    return readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  } catch {
    throw new UserError('--password-stdin: could not read standard input');
  }
}

export function explicitCredential(a: RegistryArgs): Credential | undefined {
  if (a.passwordStdin && !a.username) throw new UsageError('--password-stdin needs --username');
  if (a.username && !a.passwordStdin) throw new UsageError('--username needs --password-stdin (passwords are never taken from the command line)');
  if (!a.username) return undefined;
  const password = readStdinPassword();
  if (!password) throw new UserError('--password-stdin: standard input was empty');
  return { username: a.username, password, source: '--username/--password-stdin' };
}


/** One client per registry host, shared by every operation of a command. */
export class Clients {
  private map = new Map<string, RegistryClient>();
  constructor(
    private readonly opts: ClientOptions,
    private readonly log: (s: string) => void,
  ) {}
  get(registry: string): RegistryClient {
    let c = this.map.get(registry);
    if (!c) {
      c = new RegistryClient(registry, {
        ...this.opts,
        onRetry: (what, n, ms) => this.log(`retry ${n} in ${Math.round(ms)} ms: ${what}`),
        onWarning: (text) => this.log(`warning from ${registry}: ${text}`),
        onInfo: (text) => this.log(text),
      });
      this.map.set(registry, c);
    }
    return c;
  }
  async close(): Promise<void> {
    await Promise.all([...this.map.values()].map((c) => c.close()));
  }
}

export function clientOptions(a: RegistryArgs): ClientOptions {
  const credential = explicitCredential(a);
  return { insecure: a.insecure, caFile: a.caFile, ...(credential ? { credential } : {}) };
}

/** Loads a base or source image: local (oci:, oci-archive:, docker-archive:) or from a registry. */
export async function loadImage(ref: string, clients: Clients, platform?: Platform, what = '--from'): Promise<Image> {
  if (isLocalRef(ref)) {
    try {
      return readLocalImage(parseLocalRef(ref), platform);
    } catch (e) {
      throw new UserError((e as Error).message);
    }
  }
  const r = parseRef(ref, what);
  return pullImage(clients.get(r.registry), r, platform);
}

/** Pushes to each --push reference (plus --tag tags in the same repository); returns "REF@digest" lines. */
export async function pushAll(img: Image, refs: string[], extraTags: string[], clients: Clients, log: (s: string) => void, what = '--push'): Promise<string[]> {
  const out: string[] = [];
  const mountFrom = new Map<string, MountSource>();
  for (const l of img.layers) if (l.origin) mountFrom.set(l.descriptor.digest, l.origin);
  const all = pushTargets(refs, extraTags, what);
  for (const [i, s] of refs.entries()) {
    const targets = all[i];
    const r = targets[0];
    const client = clients.get(r.registry);
    let digest: string;
    try {
      const progress = process.stderr.isTTY ? new TtyProgress(process.stderr) : undefined;
      const stats = await pushImage(client, img, targets, { log, mountFrom, progress });
      log(`pushed ${formatReference(r)}: ${stats.uploaded} uploaded, ${stats.mounted} mounted, ${stats.existing} already there`);
      digest = stats.digest;
    } catch (e) {
      if (e instanceof RegistryError) throw new UserError(`push ${s}: ${e.message}`);
      throw e;
    }
    out.push(`${formatReference({ registry: r.registry, repository: r.repository })}@${digest}`);
  }
  return out;
}
