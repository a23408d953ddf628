#!/usr/bin/env bash
# libcurl's headers, for librdkafka's OAUTHBEARER OIDC token method (built
# with rdkafka's `curl` feature, linked against the system's libcurl4).
# Idempotent: does nothing when pkg-config already finds libcurl.
#
# Debian's `libcurl4-openssl-dev` is installed when apt can. When it cannot —
# the package mirror's dev package is older than the installed libcurl4 (a
# security update), so apt refuses it — the headers of the same upstream
# version are taken from the mirror's package, unpacked into /usr/local
# beside a `libcurl.so` link to the installed library and a `libcurl.pc`;
# nothing the package manager owns is touched. `--unpack` takes that way
# directly (to check it on a machine where apt would succeed).
set -euo pipefail

unpack_only=false
[ "${1:-}" = "--unpack" ] && unpack_only=true

if ! $unpack_only && pkg-config --exists libcurl 2>/dev/null; then
  exit 0
fi

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive

if $unpack_only; then
  :
elif $sudo_cmd apt-get install -y -qq libcurl4-openssl-dev >/dev/null 2>&1; then
  echo "install-curl-dev: installed libcurl4-openssl-dev"
  exit 0
fi
if ! $unpack_only; then
  $sudo_cmd apt-get update -qq >/dev/null 2>&1 || true
  if $sudo_cmd apt-get install -y -qq libcurl4-openssl-dev >/dev/null 2>&1; then
    echo "install-curl-dev: installed libcurl4-openssl-dev"
    exit 0
  fi
fi

# apt refused: unpack the headers of the installed library's version.
installed=$(dpkg-query -W -f='${Version}' libcurl4 2>/dev/null || true)
if [ -z "$installed" ]; then
  $sudo_cmd apt-get install -y -qq libcurl4
  installed=$(dpkg-query -W -f='${Version}' libcurl4)
fi
upstream=${installed%%-*}
multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
library=$(ls /usr/lib/"$multiarch"/libcurl.so.4 2>/dev/null || true)
if [ -z "$library" ]; then
  echo "install-curl-dev: no /usr/lib/$multiarch/libcurl.so.4 to link against" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download libcurl4-openssl-dev >/dev/null 2>&1)
deb=$(ls "$work"/libcurl4-openssl-dev_*.deb)
packaged=$(dpkg-deb -f "$deb" Version)
if [ "${packaged%%-*}" != "$upstream" ]; then
  echo "install-curl-dev: the mirror's headers are curl ${packaged%%-*}, the library is $upstream" >&2
  exit 1
fi
dpkg-deb -x "$deb" "$work/root"

$sudo_cmd mkdir -p /usr/local/include /usr/local/lib/pkgconfig
$sudo_cmd rm -rf /usr/local/include/curl
$sudo_cmd cp -r "$work/root/usr/include/$multiarch/curl" /usr/local/include/curl
$sudo_cmd ln -sf "$library" /usr/local/lib/libcurl.so
$sudo_cmd tee /usr/local/lib/pkgconfig/libcurl.pc >/dev/null <<EOF
# Headers of curl $upstream (from libcurl4-openssl-dev $packaged) for the
# installed libcurl4 $installed; written by eventide's scripts/install-curl-dev.sh.
prefix=/usr/local
includedir=\${prefix}/include
libdir=\${prefix}/lib

Name: libcurl
Description: Library to transfer files with ftp, http, etc.
Version: $upstream
Libs: -L\${libdir} -lcurl
Cflags: -I\${includedir}
EOF
echo "install-curl-dev: curl $upstream headers in /usr/local (libcurl4 $installed installed; the mirror's dev package is $packaged)"
