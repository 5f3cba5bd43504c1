import { RegistryError } from '../registry/errors.js';
import { UserError } from './errors.js';
import { Clients, clientOptions, loadImage, pushAll } from './registry.js';
import type { PushArgs } from './options.js';


/** `ocislim push SRC REF`: an image built earlier (oci:, oci-archive:, docker-archive:, or another registry). */
export async function pushCommand(a: PushArgs, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const clients = new Clients(clientOptions(a), (s) => err(`ocislim: ${s}`));
  try {
    const img = await loadImage(a.source, clients, undefined, 'push');
    const lines = await pushAll(img, [a.target], a.tag ?? [], clients, (s) => err(`ocislim: ${s}`), 'push');
    for (const l of lines) out(l);
    return 0;
  } catch (e) {
    if (e instanceof RegistryError) throw new UserError(e.message);
    throw e;
  } finally {
    await clients.close();
  }
}
