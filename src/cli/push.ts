import { RegistryError } from '../registry/errors.js';
import { UserError } from './errors.js';
import { imageRefArg, pushTargetArg, pushTo } from './refs.js';
import { registryAccess, registryMessage } from './registry.js';
import type { PushArgs } from './options.js';
import type { Log } from '../log.js';


/** `ocislim push SRC REF`: an image built earlier (oci:, oci-archive:, docker-archive:, or another registry). */
export async function pushCommand(a: PushArgs, out: (s: string) => void, log: Log): Promise<number> {
  const source = imageRefArg(a.source, 'push');
  const target = pushTargetArg(a.target, 'push', a.tag);
  const access = registryAccess(a, log);
  try {
    let img;
    try {
      img = await source.read(access);
    } catch (e) {
      if (e instanceof RegistryError) throw new UserError(registryMessage(e));
      throw new UserError((e as Error).message);
    }
    out(await pushTo(img, target, a.tag ?? [], access));
    return 0;
  } finally {
    await access.pool.close();
  }
}
