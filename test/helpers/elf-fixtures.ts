import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './sh.js';

const BAR = 'int bar(void){return 41;}\n';
const FOO = 'int bar(void); int foo(void){return bar()+1;}\n';
const APP = '#include <stdio.h>\nint foo(void); int main(void){printf("%d\\n", foo()); return 0;}\n';
const APP_BAR = '#include <stdio.h>\nint bar(void); int main(void){printf("%d\\n", bar()); return 0;}\n';
const HELLO = '#include <stdio.h>\nint main(void){puts("hello"); return 0;}\n';
const START = 'void _start(void){ __asm__ volatile("mov $60,%eax\\n xor %edi,%edi\\n syscall"); }\n';

/**
 * Builds one small tree per loader rule with gcc, ld and musl-gcc (each a line or two of real toolchain use).
 * Returns the directory; each case lives in its own subdirectory named after it.
 */
export function buildElfFixtures(dir: string): string {
  for (const [n, src] of Object.entries({ 'bar.c': BAR, 'foo.c': FOO, 'app.c': APP, 'app_bar.c': APP_BAR, 'hello.c': HELLO, 'start.c': START })) {
    writeFileSync(join(dir, n), src);
  }
  const libs = (d: string, fooExtra = '') => `
    mkdir -p ${d}/bin ${d}/lib
    gcc -shared -fPIC -o ${d}/lib/libbar.so.1 -Wl,-soname,libbar.so.1 bar.c
    gcc -shared -fPIC -o ${d}/lib/libfoo.so.1 -Wl,-soname,libfoo.so.1 foo.c ${d}/lib/libbar.so.1 ${fooExtra}`;
  sh(
    `
    ${libs('runpath_noinherit')}
    gcc -o runpath_noinherit/bin/app app.c runpath_noinherit/lib/libfoo.so.1 -Wl,-rpath-link,runpath_noinherit/lib -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../lib'

    ${libs('rpath_inherit')}
    gcc -o rpath_inherit/bin/app app.c rpath_inherit/lib/libfoo.so.1 -Wl,-rpath-link,rpath_inherit/lib -Wl,--disable-new-dtags -Wl,-rpath,'$ORIGIN/../lib'

    # $ORIGIN of a library is the directory it was found in, not its realpath; the main program's follows symlinks.
    mkdir -p origin_symlink/bin origin_symlink/lib origin_symlink/x/y/real origin_symlink/deps origin_symlink/real
    gcc -shared -fPIC -o origin_symlink/deps/libbar.so.1 -Wl,-soname,libbar.so.1 bar.c
    gcc -shared -fPIC -o origin_symlink/x/y/real/libfoo.so.1 -Wl,-soname,libfoo.so.1 foo.c origin_symlink/deps/libbar.so.1 -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../deps'
    ln -s ../x/y/real/libfoo.so.1 origin_symlink/lib/libfoo.so.1
    gcc -o origin_symlink/real/app app.c origin_symlink/lib/libfoo.so.1 -Wl,-rpath-link,origin_symlink/deps -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../lib'
    ln -s ../real/app origin_symlink/bin/app-link
    # and a symlinked directory: linkdir -> real
    ln -s real origin_symlink/linkdir

    mkdir -p dst_lib/bin dst_lib/lib/x86_64-linux-gnu
    gcc -shared -fPIC -o dst_lib/lib/x86_64-linux-gnu/libbar.so.1 -Wl,-soname,libbar.so.1 bar.c
    gcc -o dst_lib/bin/app app_bar.c dst_lib/lib/x86_64-linux-gnu/libbar.so.1 -Wl,--enable-new-dtags -Wl,-rpath,'\${ORIGIN}/../$LIB'

    # $PLATFORM is CPU dependent on x86-64 (glibc names Intel CPUs haswell or xeon_phi): one libbar per name, each
    # returning its own value, so the program's output says which one the real loader took.
    n=0; for p in x86_64 haswell xeon_phi; do
      mkdir -p dst_platform/bin dst_platform/$p
      echo "int bar(void){return $((41 + n));}" > dst_platform/$p.c; n=$((n + 10))
      gcc -shared -fPIC -o dst_platform/$p/libbar.so.1 -Wl,-soname,libbar.so.1 dst_platform/$p.c
    done
    gcc -o dst_platform/bin/app app_bar.c dst_platform/x86_64/libbar.so.1 -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../$PLATFORM'

    mkdir -p hwcaps/bin hwcaps/lib/glibc-hwcaps/x86-64-v2 hwcaps/lib/glibc-hwcaps/x86-64-v3 hwcaps/lib/glibc-hwcaps/x86-64-v4
    for d in hwcaps/lib hwcaps/lib/glibc-hwcaps/x86-64-v2 hwcaps/lib/glibc-hwcaps/x86-64-v3 hwcaps/lib/glibc-hwcaps/x86-64-v4; do
      gcc -shared -fPIC -o $d/libbar.so.1 -Wl,-soname,libbar.so.1 bar.c
    done
    gcc -o hwcaps/bin/app app_bar.c hwcaps/lib/libbar.so.1 -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../lib'

    # glibc <= 2.36 legacy hwcap subdirectories: tls/ before x86_64/ before the directory itself.
    mkdir -p legacy/bin legacy/lib/tls legacy/lib/x86_64 legacy/lib2/x86_64
    gcc -shared -fPIC -o legacy/lib/libbar.so.1 -Wl,-soname,libbar.so.1 bar.c
    printf 'int bar(void){return 42;}\\n' > bar42.c && printf 'int bar(void){return 43;}\\n' > bar43.c
    gcc -shared -fPIC -o legacy/lib/x86_64/libbar.so.1 -Wl,-soname,libbar.so.1 bar42.c
    gcc -shared -fPIC -o legacy/lib/tls/libbar.so.1 -Wl,-soname,libbar.so.1 bar43.c
    gcc -shared -fPIC -o legacy/lib2/x86_64/libbar.so.1 -Wl,-soname,libbar.so.1 bar42.c
    gcc -o legacy/bin/app app_bar.c legacy/lib/libbar.so.1 -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../lib'
    gcc -o legacy/bin/app2 app_bar.c legacy/lib/libbar.so.1 -Wl,--enable-new-dtags -Wl,-rpath,'$ORIGIN/../lib2'

    mkdir -p nodeflib/bin
    gcc -o nodeflib/bin/app hello.c -Wl,-z,nodefaultlib

    # A 32-bit libbar.so.1 comes first in the RPATH: the loader skips it for the 64-bit one.
    mkdir -p wrongclass/bin wrongclass/lib32 wrongclass/lib
    gcc -m32 -shared -nostdlib -fPIC -o wrongclass/lib32/libbar.so.1 -Wl,-soname,libbar.so.1 bar.c
    gcc -shared -fPIC -o wrongclass/lib/libbar.so.1 -Wl,-soname,libbar.so.1 bar.c
    gcc -o wrongclass/bin/app app_bar.c wrongclass/lib/libbar.so.1 -Wl,--disable-new-dtags -Wl,-rpath,'$ORIGIN/../lib32:$ORIGIN/../lib'

    # An empty RUNPATH (patchelf --set-rpath '') is present: it switches the RPATH chain off for libfoo's own needs,
    # so libbar, only in the program's RPATH directory, is not found (the program exits 127).
    ${libs('runpath_empty', "-Wl,--enable-new-dtags -Wl,-rpath,/nowhere")}
    patchelf --set-rpath '' runpath_empty/lib/libfoo.so.1
    gcc -o runpath_empty/bin/app app.c runpath_empty/lib/libfoo.so.1 -Wl,-rpath-link,runpath_empty/lib -Wl,--disable-new-dtags -Wl,-rpath,'$ORIGIN/../lib'

    # An RPATH of 5,000 bytes (Bazel, Nix and conda write such lists): glibc reads it whole.
    ${libs('long_rpath')}
    long=$(python3 -c 'print(":".join("/nonexistent/" + "d" * 100 + str(i) for i in range(45)))')
    gcc -o long_rpath/bin/app app.c long_rpath/lib/libfoo.so.1 -Wl,-rpath-link,long_rpath/lib -Wl,--disable-new-dtags -Wl,-rpath,"$long":'$ORIGIN/../lib'

    # A library without SONAME linked by absolute path: DT_NEEDED holds the path.
    mkdir -p needed_slash/bin needed_slash/lib
    gcc -shared -fPIC -o needed_slash/lib/libnosoname.so bar.c
    gcc -o needed_slash/bin/app app_bar.c "$PWD/needed_slash/lib/libnosoname.so"

    mkdir -p static
    gcc -static -o static/app hello.c
    gcc -static-pie -o static/app-pie hello.c
    musl-gcc -static -o static/app-musl hello.c

    mkdir -p musl
    musl-gcc -o musl/app hello.c

    mkdir -p interp_only
    gcc -nostdlib -fPIE -pie -Wl,--dynamic-linker=/lib64/ld-linux-x86-64.so.2 -o interp_only/app start.c
    `,
    dir,
  );
  return dir;
}

/** A copy of an ELF file with e_shoff, e_shnum and e_shstrndx zeroed: the loader does not care, nor may we. */
export function stripSectionHeaders(src: string, dst: string): void {
  sh(`cp '${src}' '${dst}' && python3 - '${dst}' <<'PY'
import sys, struct
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
is64 = b[4] == 2
if is64:
    b[40:48] = b'\\0' * 8; b[60:64] = b'\\0' * 4
else:
    b[32:36] = b'\\0' * 4; b[48:52] = b'\\0' * 4
open(p, 'wb').write(b)
PY`);
}
