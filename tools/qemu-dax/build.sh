#!/usr/bin/env bash
# Build qemu-dax: Debian bookworm's QEMU 7.2 with qemu-dax.patch (a DAX cache
# window on vhost-user-fs-pci), x86_64 system emulator only, and print the
# path of its qemu-system-x86_64 on stdout. The result is cached under
# $FUSEDAX_CACHE/qemu-dax/<hash of the patch and this script>/, so a second
# run prints the path at once; the first takes about 5 minutes on 2 cores.
#
# Usage: tools/qemu-dax/build.sh
# Env:   FUSEDAX_CACHE   cache root (default /var/cache/fusedax)
#        FUSEDAX_QEMU_DAX_JOBS  parallel compile jobs (default: nproc)
# Needs root the first time (apt-get for the build dependencies); the
# source comes through tools/debian-source.sh, which never touches /etc/apt.
# Exit: 0 ok; 77 when the Debian archive cannot be reached (message on
#       stderr); 1 on any other error (what failed, and the log to read).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
root=${FUSEDAX_CACHE:-/var/cache/fusedax}
patch_file=$here/qemu-dax.patch
key=$(cat "$patch_file" "$here/build.sh" | sha256sum | cut -c1-16)
out=$root/qemu-dax/$key
bin=$out/bin/qemu-system-x86_64

say() { echo "qemu-dax: $*" >&2; }
fail() { say "$*"; exit 1; }

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$root/qemu-dax"
# One build per key at a time: a second caller waits, then finds the binary.
exec 9>"$root/qemu-dax/$key.lock"
flock 9
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

# Build dependencies (Debian package names). The firmware packages provide
# the BIOS and option ROMs the binary finds through $out/share (below).
deps=(gcc make ninja-build meson pkg-config python3 patch libglib2.0-dev
      libpixman-1-dev zlib1g-dev libfdt-dev qemu-system-data seabios ipxe-qemu)
missing=()
for p in "${deps[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || fail "missing build dependencies (${missing[*]}); run as root to install them"
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
		apt-get update -q >/dev/null 2>&1 || { say "apt-get update failed (no access to the Debian archive?)"; exit 77; }
		apt-get install -y -q "${missing[@]}" >/dev/null ||
			fail "apt-get install ${missing[*]} failed"
	fi
fi

rc=0
src=$("$repo/tools/debian-source.sh" qemu bookworm 1:7.2) || rc=$?
if [ "$rc" -ne 0 ]; then
	[ "$rc" -eq 77 ] && exit 77
	fail "could not fetch Debian's qemu 1:7.2 source (tools/debian-source.sh exit $rc)"
fi

work=$root/qemu-dax/work-$key
log=$work/build.log
rm -rf "$work" "$out"
mkdir -p "$work"
say "building QEMU 7.2 with $(basename "$patch_file") in $work (about 5 minutes on 2 cores; log: $log)"
# The unpacked source is a shared cache: patch a copy of it.
cp -a "$src" "$work/src"
(cd "$work/src" && patch -p1 --forward --batch <"$patch_file") >"$log" 2>&1 ||
	fail "$(basename "$patch_file") does not apply to $src; see $log"

# --prefix=/usr: QEMU looks for its data files relative to its binary
# (bin/../share/qemu, ...), so $out/share points at Debian's firmware.
mkdir -p "$work/src/build"
(cd "$work/src/build" && ../configure \
	--prefix=/usr \
	--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu \
	--target-list=x86_64-softmmu \
	--without-default-features --without-default-devices \
	--with-devices-x86_64=fusedax-dax \
	--enable-vhost-user --enable-kvm --enable-fdt=system \
	--enable-trace-backends=log \
	--disable-docs --disable-werror --disable-install-blobs \
	--meson=/usr/bin/meson) >>"$log" 2>&1 ||
	fail "configure failed; see $log"
(cd "$work/src/build" &&
	ninja -j"${FUSEDAX_QEMU_DAX_JOBS:-$(nproc)}" qemu-system-x86_64) >>"$log" 2>&1 ||
	fail "the build failed; see $log"

stage=$out.tmp
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/share" "$stage/lib/ipxe"
cp "$work/src/build/qemu-system-x86_64" "$stage/bin/"
ln -s /usr/share/qemu "$stage/share/qemu"
ln -s /usr/share/seabios "$stage/share/seabios"
ln -s /usr/lib/ipxe/qemu "$stage/lib/ipxe/qemu"
cp "$patch_file" "$stage/"
"$stage/bin/qemu-system-x86_64" -device vhost-user-fs-pci,help 2>&1 |
	grep -q "cache-size" || fail "the binary built in $work has no cache-size property"
mv "$stage" "$out"
rm -rf "$work"
say "built $bin"
echo "$bin"
