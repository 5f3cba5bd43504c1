import { RegistryClient } from '../registry/client.js';
import { storeCredentials } from '../registry/credentials.js';
import { staticKeychain } from '../registry/keychain.js';
import { parseReference } from '../registry/reference.js';
import { UserError } from './errors.js';
import { explicitCredential, networkLimits, RegistryArgs } from './registry.js';
import type { Log } from '../log.js';

/** `ocislim login REGISTRY -u USER --password-stdin`: checks the credentials, then stores them as docker does. */
export async function loginCommand(registryArg: string, a: RegistryArgs, log: Log): Promise<number> {
  const cred = explicitCredential({ ...a, passwordStdin: a.passwordStdin ?? !!a.username });
  if (!cred) throw new UserError('login needs --username and the password on standard input (--password-stdin)');
  let registry: string;
  try {
    registry = parseReference(`${registryArg.replace(/^https?:\/\//, '').replace(/\/+$/, '')}/x`).registry;
  } catch {
    throw new UserError(`login: "${registryArg}" is not a registry host`);
  }
  const client = new RegistryClient(registry, { insecure: a.insecure, caFile: a.caFile, ...networkLimits(a), keychain: staticKeychain(cred), log });
  try {
    // A token for a harmless scope proves the credentials (Basic registries check them on /v2/ itself). Only a real
    // success counts: a 500 says nothing about them, and then nothing is stored.
    const res = await client.request({ method: 'GET', url: '/v2/' }, ['registry:catalog:*']);
    await res.body.dump();
    if (res.status === 401 || res.status === 403) throw new UserError(`login ${registry}: the registry refused the credentials`);
    if (res.status < 200 || res.status > 299) throw new UserError(`login ${registry}: the registry answered HTTP ${res.status} to GET /v2/ with the credentials, not a success; nothing stored`);
  } finally {
    await client.close();
  }
  const where = storeCredentials(registry, cred.username!, cred.password!);
  log.info(`login succeeded; credentials for ${registry} stored in ${where}`);
  return 0;
}
