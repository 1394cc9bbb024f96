#!/bin/sh
# Builds a throw-away Linux guest for the vhost-user-fs tests: Debian's 6.1
# cloud kernel (virtio-fs as a module, FUSE DAX built in) and a busybox
# initramfs whose /init mounts virtio-fs and runs the script the test passes
# on the kernel command line, with daxtool (daxtool.c, built static here)
# for the DAX coherence tests. Everything lands in a cache directory outside
# the repository; nothing here is machine specific. The initramfs is named
# by the hash of its inputs, so checkouts with different versions of these
# files can share the cache.
#
# Usage: build-guest.sh            prints "KERNEL INITRD" on success
# Env:   FUSEDAX_GUEST_CACHE       cache dir (default $XDG_CACHE_HOME/fusedax-guest,
#                                  else /var/tmp/fusedax-guest)
# Exit:  0 ok, 77 when a package cannot be obtained (message on stderr).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cache=${FUSEDAX_GUEST_CACHE:-${XDG_CACHE_HOME:-/var/tmp}/fusedax-guest}
mkdir -p "$cache"
cd "$cache"

skip() { echo "build-guest: $*" >&2; exit 77; }

# busybox-static and cpio come from Debian; install them if we may.
if ! [ -x /bin/busybox ] || ! command -v cpio >/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		apt-get install -y busybox-static cpio >/dev/null 2>&1 ||
			skip "cannot install busybox-static cpio with apt-get"
	fi
fi
[ -x /bin/busybox ] || skip "no /bin/busybox (package busybox-static)"
command -v cpio >/dev/null || skip "no cpio"
command -v gcc >/dev/null || { echo "build-guest: no gcc (package gcc)" >&2; exit 1; }
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
file_is_static /bin/busybox || skip "/bin/busybox is not static (install busybox-static)"

# Resolve the cloud kernel package the meta-package points at.
if ! [ -f kernel.pkg ]; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' | head -1)
	[ -n "$pkg" ] || skip "apt-cache cannot resolve linux-image-cloud-amd64 (apt-get update?)"
	echo "$pkg" > kernel.pkg
fi
pkg=$(cat kernel.pkg)
if ! [ -d kroot/boot ]; then
	rm -rf kroot dl && mkdir -p dl
	(cd dl && apt-get download "$pkg" >/dev/null 2>&1) ||
		skip "apt-get download $pkg failed (no access to the Debian archive?)"
	dpkg -x dl/*.deb kroot
	rm -rf dl
fi
vmlinuz=$(ls kroot/boot/vmlinuz-* | head -1)
kver=${vmlinuz##*/vmlinuz-}
mods=kroot/lib/modules/$kver/kernel

stamp=$(cat "$here/init.sh" "$here/build-guest.sh" "$here/daxtool.c" | sha256sum | cut -c1-16)
initrd=initrd-$stamp.gz
if ! [ -f "$initrd" ]; then
	ir=$(mktemp -d ir.XXXXXX)
	mkdir -p "$ir/bin" "$ir/lib/mods" "$ir/proc" "$ir/sys" "$ir/dev" "$ir/mnt" "$ir/tmp"
	cp /bin/busybox "$ir/bin/busybox"
	# glibc's static libraries come with libc6-dev.
	gcc -static -O2 -Wall -Wextra -o "$ir/bin/daxtool" "$here/daxtool.c" ||
		{ echo "build-guest: cannot build daxtool.c static (libc6-dev?)" >&2; exit 1; }
	for m in drivers/virtio/virtio_ring drivers/virtio/virtio \
		drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev \
		drivers/virtio/virtio_pci fs/fuse/fuse fs/fuse/virtiofs; do
		f=$(ls "$mods/$m.ko"* 2>/dev/null | head -1)
		[ -n "$f" ] || { echo "build-guest: no module $m in $pkg" >&2; exit 1; }
		case "$f" in
		*.xz) xz -dc "$f" > "$ir/lib/mods/${m##*/}.ko" ;;
		*.zst) zstd -qdc "$f" > "$ir/lib/mods/${m##*/}.ko" ;;
		*) cp "$f" "$ir/lib/mods/${m##*/}.ko" ;;
		esac
	done
	cp "$here/init.sh" "$ir/init"
	chmod 755 "$ir/init"
	(cd "$ir" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$initrd.$$"
	mv "$initrd.$$" "$initrd"
	rm -rf "$ir"
fi
echo "$cache/$vmlinuz $cache/$initrd"
