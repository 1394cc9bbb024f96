#!/usr/bin/env bash
# Install what fusedax needs on Debian 12 (as root) and build it into build/.
# Safe to run again: installs only what is missing, reconfigures only when needed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(meson ninja-build pkg-config gcc clang libclang-rt-14-dev
          libfuse3-dev fuse3 liburing-dev fio python3-pytest attr acl
          util-linux procps e2fsprogs strace libseccomp-dev
          qemu-system-x86 busybox-static cpio
          g++ dpkg-dev debian-archive-keyring file python3-packaging python3-py python3-matplotlib)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: missing packages (${missing[*]}); run as root to install them" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q "${missing[@]}" >/dev/null
fi

if [ ! -f build/build.ninja ]; then
	meson setup build >/dev/null
fi
ninja -C build >/dev/null || ninja -C build
echo "setup: built fusedax into build/"
