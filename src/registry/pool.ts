import { ClientOptions, RegistryClient } from './client.js';

/** Client options shared by the pool's clients; `log` receives retries, resumptions and registry Warning headers. */
export type PoolOptions = ClientOptions;

/** One client per registry host (one connection pool and token cache each), shared by the operations of a task. */
export class ClientPool {
  private readonly map = new Map<string, RegistryClient>();
  constructor(private readonly opts: PoolOptions = {}) {}

  get(registry: string): RegistryClient {
    let c = this.map.get(registry);
    if (!c) {
      c = new RegistryClient(registry, this.opts);
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
