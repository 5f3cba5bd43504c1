#!/usr/bin/env bash
# Installs everything the test suite needs and runs every test. Run as root on Debian 12:
#   sudo scripts/test.sh
# Real tools, not mocks: the tests build fixtures with gcc and musl-gcc, compare against ldd and qemu, read our
# images with skopeo, umoci and oci-image-tool, run them with runc and push them to a loopback docker-registry.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  gcc libc6-dev musl-tools python3 golang-go patchelf  # fixtures (patchelf: an empty RUNPATH)
  qemu-user-static                                  # foreign-architecture ground truth
  skopeo umoci oci-image-tool runc docker-registry  # readers, runtime and registry for our images
  podman                                            # loads our archives without a daemon
  redis-server redis-tools busybox-static openssl   # real programs to ship
  pax-utils python3-pyelftools                      # lddtree, for the benchmarks
  apache2-utils                                     # htpasswd (bcrypt) for the Basic-auth registry
  bsdutils iputils-ping libcap2-bin tzdata ca-certificates xz-utils bzip2 curl  # script, ping, getcap, zones, CA bundle, ADD tars
  ffmpeg imagemagick                                # large dynamic programs that widen the ldd corpus
  buildah                                           # the reference for Dockerfile semantics (conformance corpus)
  nginx php8.2-cli postgresql perl tcl gnupg git    # real programs with runtimes, plugins and helpers (runtimes test)
  strace util-linux                                 # --trace; unshare for a private trust store in the TLS tests
  python3-debian dctrl-tools                        # deb822 and grep-dctrl read our status.d records
  wget libgnutls28-dev libnss3-dev libnss3-tools libcurl3-nss p11-kit-modules  # GnuTLS and NSS clients, certutil, p11-kit's trust module (trust test)
)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # Foreign sysroots (apt-get download PKG:ARCH): arm64, and s390x for a big-endian platform.
  for arch in arm64 s390x; do
    dpkg --print-foreign-architectures | grep -qx "$arch" || dpkg --add-architecture "$arch"
  done
  echo "scripts/test.sh: installing Debian packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
else
  echo "scripts/test.sh: not root (or not Debian): assuming these are installed: ${PACKAGES[*]}" >&2
fi

npm ci --no-audit --no-fund
npm test
