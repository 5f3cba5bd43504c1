import { PushProgress } from '../registry/push.js';
import { humanSize } from './format.js';

/** Bars per blob on a terminal, redrawn in place (at most every 100 ms). */
export class TtyProgress implements PushProgress {
  private rows = new Map<string, { size: number; sent: number; state: string }>();
  private drawn = 0;
  private last = 0;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  start(digest: string, size: number): void {
    this.rows.set(digest, { size, sent: 0, state: 'uploading' });
    this.draw(true);
  }
  bytes(digest: string, n: number): void {
    const r = this.rows.get(digest);
    if (r) r.sent += n;
    this.draw(false);
  }
  done(digest: string, how: 'uploaded' | 'exists' | 'mounted'): void {
    const r = this.rows.get(digest) ?? { size: 0, sent: 0, state: '' };
    r.state = how === 'exists' ? 'already there' : how;
    r.sent = r.size;
    this.rows.set(digest, r);
    this.draw(true);
  }

  private draw(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const width = 30;
    const lines = [...this.rows].map(([d, r]) => {
      const frac = r.size ? Math.min(1, r.sent / r.size) : 1;
      const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '-');
      return `${d.slice(7, 19)} [${bar}] ${humanSize(r.sent).padStart(10)} / ${humanSize(r.size).padEnd(10)} ${r.state}`;
    });
    if (this.drawn) this.stream.write(`\x1b[${this.drawn}A`);
    for (const l of lines) this.stream.write(`\x1b[2K${l}\n`);
    this.drawn = lines.length;
  }
}
