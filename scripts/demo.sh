#!/usr/bin/env bash
# Set up (packages, build), mount passthrough_dax over a demo directory and
# show it working: files written through the mount land in the source
# directory, and a DAX window is created. Unmounts at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

demo=$(mktemp -d /tmp/fusedax-demo.XXXXXX)
src="$demo/source"; mnt="$demo/mnt"
mkdir -p "$src" "$mnt"
echo "hello from the host side" > "$src/host.txt"

cleanup() {
	umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	[ -n "${pid:-}" ] && wait "$pid" 2>/dev/null || true
	rm -rf "$demo"
}
trap cleanup EXIT

build/example/passthrough_dax -f -o source="$src" -o dax=always \
	-o dax_window_size=64M "$mnt" 2>"$demo/daemon.log" &
pid=$!
for _ in $(seq 100); do
	grep -q " $mnt " /proc/self/mountinfo && break
	sleep 0.1
done
grep -q " $mnt " /proc/self/mountinfo || { echo "demo: mount did not appear"; cat "$demo/daemon.log"; exit 1; }

set -x
mount | grep "$mnt"
ls -l "$mnt"
cat "$mnt/host.txt"
echo "written through FUSE" > "$mnt/fuse.txt"
cat "$src/fuse.txt"
dd if=/dev/urandom of="$mnt/big.bin" bs=1M count=8 status=none
cmp "$mnt/big.bin" "$src/big.bin" && echo "8 MiB round trip: identical"
df -h "$mnt"
set +x
echo "--- daemon log ---"
cat "$demo/daemon.log"
umount "$mnt"
wait "$pid"
echo "demo: passthrough_dax exited cleanly (status $?)"
