import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../oci/atomic.js';

/**
 * What pushes remember between processes, in a directory (the CLI uses its cache directory):
 *  - which repositories of each registry received which blobs (blobs.json), so a blob pushed once is mounted into
 *    another repository of the same registry instead of uploaded again;
 *  - the upload session of a large blob (uploads/KEY.json: its URL and how far it got), so an upload cut by a killed
 *    process resumes in the next one from the last chunk the registry acknowledged.
 * Files are written atomically (temporary name, rename) and read leniently: a lost or broken record only costs an
 * upload. Mode 0600: session URLs carry the registry's upload state.
 */

/** Repositories remembered per blob (most recent first). */
const MAX_REPOS = 4;
/** Blobs remembered per registry; the oldest go first. */
const MAX_BLOBS = 20_000;

type Memory = Record<string, Record<string, string[]>>;

export interface UploadSession {
  /** The saved session: its URL and the offset the registry acknowledged. */
  load(): { url: string; offset: number } | null;
  save(url: string, offset: number): void;
  clear(): void;
}

export class PushState {
  private mem: Memory | null = null;
  private added: [string, string, string][] = [];

  constructor(readonly dir: string) {}

  private get file(): string {
    return join(this.dir, 'blobs.json');
  }

  private read(): Memory {
    try {
      const m = JSON.parse(readFileSync(this.file, 'utf8')) as Memory;
      return m && typeof m === 'object' ? m : {};
    } catch {
      return {};
    }
  }

  /** Repositories of `registry` that received `digest` from an earlier push (most recent first). */
  reposWith(registry: string, digest: string): string[] {
    this.mem ??= this.read();
    const r = this.mem[registry]?.[digest];
    return Array.isArray(r) ? r.filter((x) => typeof x === 'string') : [];
  }

  /** Notes that `repo` of `registry` holds `digest` (kept in memory until save()). */
  remember(registry: string, digest: string, repo: string): void {
    this.added.push([registry, digest, repo]);
  }

  /** Writes what was learnt, merged with what other processes wrote meanwhile. */
  save(): void {
    if (!this.added.length) return;
    const m = this.read();
    for (const [registry, digest, repo] of this.added) {
      const reg = (m[registry] ??= {});
      const repos = (reg[digest] ?? []).filter((r) => r !== repo);
      delete reg[digest]; // re-inserted last: insertion order is recency
      reg[digest] = [repo, ...repos].slice(0, MAX_REPOS);
      const keys = Object.keys(reg);
      for (const k of keys.slice(0, Math.max(0, keys.length - MAX_BLOBS))) delete reg[k];
    }
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileAtomic(this.file, JSON.stringify(m), 0o600);
      this.added = [];
      this.mem = m;
    } catch {
      /* a read-only directory: nothing remembered */
    }
  }

  /** The resumable session record of one blob's upload to one repository. */
  session(registry: string, repo: string, digest: string): UploadSession {
    const file = join(this.dir, 'uploads', createHash('sha256').update(`${registry}\n${repo}\n${digest}`).digest('hex').slice(0, 32) + '.json');
    return {
      load: () => {
        try {
          const s = JSON.parse(readFileSync(file, 'utf8')) as { url: string; offset: number; registry: string; repo: string; digest: string };
          if (s.registry !== registry || s.repo !== repo || s.digest !== digest || typeof s.url !== 'string') return null;
          return { url: s.url, offset: Number(s.offset) || 0 };
        } catch {
          return null;
        }
      },
      save: (url, offset) => {
        try {
          mkdirSync(join(this.dir, 'uploads'), { recursive: true });
          writeFileAtomic(file, JSON.stringify({ registry, repo, digest, url, offset }), 0o600);
        } catch {
          /* not resumable then */
        }
      },
      clear: () => rmSync(file, { force: true }),
    };
  }
}
