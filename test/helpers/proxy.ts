import { rng } from './rng.js';
import { createConnection, createServer, Server, Socket } from 'node:net';

export interface ProxyOptions {
  /** Share of connections closed at once, before any byte is forwarded (0..1). */
  dropRate?: number;
  /** Share of connections cut after `cutAfterBytes` client-to-server bytes (0..1). */
  cutRate?: number;
  cutAfterBytes?: number;
  /** Share of connections cut after `cutDownAfterBytes` server-to-client bytes (0..1): broken downloads. */
  cutDownRate?: number;
  cutDownAfterBytes?: number;
  /** Stop injecting faults after this many (then behave); Infinity for no limit. */
  maxFaults?: number;
  seed?: number;
}

export interface TcpProxy {
  host: string;
  port: number;
  /** Bytes forwarded client → server and server → client. */
  bytesUp: number;
  bytesDown: number;
  connections: number;
  faults: number;
  reset: () => void;
  close: () => Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1 in front of a real server that drops or cuts a share of connections, deterministically
 * (seeded), and counts the bytes that cross it.
 */
export function startProxy(targetPort: number, opts: ProxyOptions = {}): Promise<TcpProxy> {
  const rnd = rng(opts.seed ?? 42);
  const sockets = new Set<Socket>();
  const p: TcpProxy = {
    host: '',
    port: 0,
    bytesUp: 0,
    bytesDown: 0,
    connections: 0,
    faults: 0,
    reset: () => {
      p.bytesUp = 0;
      p.bytesDown = 0;
      p.connections = 0;
    },
    close: () => new Promise(() => {}),
  };
  const maxFaults = opts.maxFaults ?? Infinity;
  const server: Server = createServer((client) => {
    p.connections++;
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => {});
    if (p.faults < maxFaults && rnd() < (opts.dropRate ?? 0)) {
      p.faults++;
      client.destroy();
      return;
    }
    // Chosen per connection; counted as a fault only when the cut happens (a connection chosen that never carries
    // the bytes is no fault), so that with maxFaults N the first N connections that carry that much are the ones cut,
    // whatever order the client opens its connections in.
    const cut = p.faults < maxFaults && rnd() < (opts.cutRate ?? 0);
    const cutDown = !cut && p.faults < maxFaults && rnd() < (opts.cutDownRate ?? 0);
    let sent = 0;
    let received = 0;
    let cutDownNow = false;
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('data', (d: Buffer) => {
      sent += d.length;
      p.bytesUp += d.length;
      if (cut && sent > (opts.cutAfterBytes ?? 1024) && p.faults < maxFaults) {
        p.faults++;
        client.destroy();
        upstream.destroy();
        return;
      }
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      received += d.length;
      if (cutDown && received > (opts.cutDownAfterBytes ?? 1024) && (cutDownNow || p.faults < maxFaults)) {
        if (!cutDownNow) p.faults++;
        cutDownNow = true;
        const keep = d.subarray(0, d.length - (received - (opts.cutDownAfterBytes ?? 1024)));
        p.bytesDown += keep.length;
        client.write(keep, () => client.destroy());
        upstream.destroy();
        return;
      }
      p.bytesDown += d.length;
      client.write(d);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      p.port = (server.address() as { port: number }).port;
      p.host = `127.0.0.1:${p.port}`;
      p.close = () =>
        new Promise((r) => {
          for (const x of sockets) x.destroy();
          server.close(() => r());
        });
      resolve(p);
    });
  });
}
