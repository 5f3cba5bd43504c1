import { parseReference, Reference, ReferenceError } from '../registry/reference.js';
import { UsageError } from './errors.js';

/** A registry reference from the command line (REF or docker://REF); `what` names the flag or argument it came from. */
export function parseRef(s: string, what: string): Reference {
  try {
    return parseReference(s);
  } catch (e) {
    if (e instanceof ReferenceError) throw new UsageError(`${what}: ${e.message}`);
    throw e;
  }
}

const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * Each push reference with the extra --tag tags in its repository, checked in full: called before a build, so a bad
 * reference fails before anything is written.
 */
export function pushTargets(refs: string[], extraTags: string[], what = '--push'): Reference[][] {
  for (const t of extraTags) if (!TAG.test(t)) throw new UsageError(`--tag ${t}: not a valid tag`);
  return refs.map((s) => {
    const r = parseRef(s, what);
    if (r.digest) throw new UsageError(`${what} ${s}: push to a tag, not a digest`);
    return [r, ...extraTags.map((t) => ({ ...r, tag: t }))];
  });
}
