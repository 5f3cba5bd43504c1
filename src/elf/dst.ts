/** Values for glibc's dynamic string tokens; null means "no value", which drops the path element. */
export interface DstValues {
  ORIGIN: string | null;
  LIB: string;
  PLATFORM: string;
}

const TOKEN = /\$(?:\{(ORIGIN|LIB|PLATFORM)\}|(ORIGIN|LIB|PLATFORM)(?![A-Za-z0-9_]))/g;

/**
 * Expands $ORIGIN, $LIB and $PLATFORM (and their braced forms) as glibc does (elf/dl-load.c _dl_dst_substitute):
 * `$ORIGINX` is not a token, an unknown `$` is kept literally, and a token without a value yields null.
 */
export function expandGlibcDst(s: string, v: DstValues): string | null {
  let missing = false;
  const out = s.replace(TOKEN, (_m, braced: string | undefined, bare: string | undefined) => {
    const val = v[(braced ?? bare) as keyof DstValues];
    if (val === null || val === '') missing = true;
    return val ?? '';
  });
  return missing ? null : out;
}

/** musl (ldso/dynlink.c fixup_rpath): only $ORIGIN; any other `$` disables the object's whole path list. */
export function expandMuslDst(s: string, origin: string): string | null {
  let bad = false;
  const out = s.replace(/\$(\{ORIGIN\}|ORIGIN)?/g, (m, tok) => {
    if (!tok) {
      bad = true;
      return m;
    }
    return origin;
  });
  return bad ? null : out;
}

/** Splits an RPATH/RUNPATH (":") or LD_LIBRARY_PATH (":;") list; empty elements mean the current directory. */
export function splitPathList(s: string, separators = ':'): string[] {
  const re = separators === ':' ? /:/ : /[:;]/;
  return s.split(re).map((x) => (x === '' ? '.' : x.length > 1 ? x.replace(/\/+$/, '') : x));
}
