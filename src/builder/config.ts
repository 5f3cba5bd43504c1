import { RunConfig, sortedRecord } from '../oci/image.js';
import { BuildSpec, DEFAULT_PATH, parsePort } from './spec.js';

/** The image config: runtime settings from the spec, defaults where it is silent. */
export function runConfig(spec: BuildSpec, defaultEntrypoint: string | null, base?: RunConfig): RunConfig {
  const c: RunConfig = { ...(base ?? {}) };
  const env = [...(base?.Env ?? [])];
  const setEnv = (kv: string) => {
    const k = kv.slice(0, kv.indexOf('='));
    const i = env.findIndex((e) => e.startsWith(k + '='));
    if (i >= 0) env[i] = kv;
    else env.push(kv);
  };
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(`PATH=${DEFAULT_PATH}`);
  for (const kv of spec.env) setEnv(kv);
  c.Env = env;
  if (spec.entrypoint) {
    c.Entrypoint = spec.entrypoint;
    // As in Dockerfiles: a new ENTRYPOINT drops an inherited CMD.
    if (base?.Cmd && !spec.cmd) delete c.Cmd;
  } else if (defaultEntrypoint) {
    // The program given is what the image runs, as with ko; an inherited Cmd was the base's arguments.
    c.Entrypoint = [defaultEntrypoint];
    if (base?.Cmd && !spec.cmd) delete c.Cmd;
  }
  if (spec.cmd) c.Cmd = spec.cmd;
  if (spec.expose.length) c.ExposedPorts = sortedRecord({ ...(base?.ExposedPorts ?? {}), ...Object.fromEntries(spec.expose.map((p) => [parsePort(p), {}])) });
  if (spec.workdir) c.WorkingDir = spec.workdir;
  if (spec.user) c.User = spec.user;
  if (Object.keys(spec.labels).length) c.Labels = sortedRecord({ ...(base?.Labels ?? {}), ...spec.labels });
  if (spec.stopSignal) c.StopSignal = spec.stopSignal;
  if (spec.healthcheck) c.Healthcheck = spec.healthcheck;
  if (spec.volumes.length) c.Volumes = sortedRecord({ ...(base?.Volumes ?? {}), ...Object.fromEntries(spec.volumes.map((v) => [v, {}])) });
  return c;
}
