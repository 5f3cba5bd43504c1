import { ClientOptions, RegistryClient } from './client.js';

export interface PoolOptions extends ClientOptions {
  /** Progress notes (retries, resumptions, registry Warning headers), one line each; never a secret. */
  log?: (s: string) => void;
}

/** One client per registry host (one connection pool and token cache each), shared by the operations of a task. */
export class ClientPool {
  private readonly map = new Map<string, RegistryClient>();
  constructor(private readonly opts: PoolOptions = {}) {}

  get(registry: string): RegistryClient {
    let c = this.map.get(registry);
    if (!c) {
      const { log, ...opts } = this.opts;
      c = new RegistryClient(
        registry,
        log
          ? {
              onRetry: (what, n, ms) => log(`retry ${n} in ${Math.round(ms)} ms: ${what}`),
              onWarning: (text) => log(`warning from ${registry}: ${text}`),
              onInfo: (text) => log(text),
              ...opts,
            }
          : opts,
      );
      this.map.set(registry, c);
    }
    return c;
  }

  async close(): Promise<void> {
    const all = [...this.map.values()];
    this.map.clear();
    await Promise.all(all.map((c) => c.close()));
  }
}
