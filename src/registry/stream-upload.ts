import { PassThrough } from 'node:stream';
import { Descriptor } from '../oci/image.js';
import { RegistryClient, scopeFor } from './client.js';
import { header } from './transport.js';

/** Compressed bytes allowed to wait for the network before a streamed upload is given up. */
export const MAX_WAITING = 16 << 20;

/**
 * A blob uploaded while it is being made (a layer being compressed), its digest known only at the end, as docker
 * push does: POST a session, one PATCH whose body is fed as the bytes come (chunked transfer encoding), then PUT
 * ?digest= once the last byte is out. The producer never waits for it: when the registry falls behind (more than
 * MAX_WAITING bytes queued) or anything fails, the upload is dropped and `finish` answers false, and the push then
 * uploads the finished blob file the usual way (HEAD, retries, resumption). Nothing here is retried: the usual way
 * is the retry.
 */
export class StreamedUpload {
  private readonly body = new PassThrough({ highWaterMark: 1 << 20 });
  private dropped = false;
  private readonly scopes: string[];
  /** Where the session stands after the PATCH, or null when the upload failed. */
  private readonly patched: Promise<URL | null>;

  constructor(
    private readonly client: RegistryClient,
    private readonly repo: string,
    private readonly maxWaiting = MAX_WAITING,
  ) {
    this.scopes = [scopeFor(repo, 'pull,push')];
    this.body.on('error', () => {});
    this.patched = this.run().catch(() => {
      this.drop();
      return null;
    });
  }

  private async run(): Promise<URL | null> {
    await this.client.ping();
    const { url } = await this.client.startUpload(this.repo, this.scopes);
    if (this.dropped) return null;
    let opened = false;
    const res = await this.client.request(
      {
        method: 'PATCH',
        url,
        headers: { 'content-type': 'application/octet-stream' },
        // A live stream can be sent once: a second attempt (a 401, a redirect) fails, and the usual upload follows.
        body: () => {
          if (opened) throw new Error('a streamed upload cannot be sent again');
          opened = true;
          return this.body;
        },
        retry: false,
        slowAnswer: true,
      },
      this.scopes,
    );
    await res.body.dump().catch(() => {});
    if (res.status !== 202 && res.status !== 204) return null;
    const next = header(res, 'location');
    return next ? new URL(next, url) : url;
  }

  /** The next bytes of the blob; ignored once the upload was dropped. */
  write(chunk: Buffer): void {
    if (this.dropped) return;
    if (this.body.writableLength > this.maxWaiting) return this.drop();
    this.body.write(chunk);
  }

  /** All bytes are out: commits the blob under `d`. True when the registry now has it. */
  async finish(d: Descriptor): Promise<boolean> {
    if (this.dropped) return false;
    this.body.end();
    const at = await this.patched;
    if (!at || this.dropped) return false;
    try {
      await this.client.commit(this.repo, at, d, this.scopes, Buffer.alloc(0));
      return true;
    } catch {
      return false;
    }
  }

  /** Gives the upload up (the producer failed, or the registry is too slow); the session is left to expire. */
  drop(): void {
    if (this.dropped) return;
    this.dropped = true;
    this.body.destroy(new Error('streamed upload dropped'));
  }
}
