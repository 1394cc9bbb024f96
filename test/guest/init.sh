#!/bin/busybox sh
# /init of the test guest: loads virtio-fs, mounts the tag named on the
# kernel command line (fusedax.tag=, fusedax.opts=) on /mnt, then runs the
# shell script the host put into the file system as .guest-test.sh and
# powers off. Lines the host parses start with "GUEST:".
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci fuse virtiofs; do
	insmod /lib/mods/$m.ko 2>/dev/null
done
tag=myfs
opts=
for a in $(cat /proc/cmdline); do
	case "$a" in
	fusedax.tag=*) tag=${a#fusedax.tag=} ;;
	fusedax.opts=*) opts=${a#fusedax.opts=} ;;
	esac
done
if mount -t virtiofs ${opts:+-o $opts} "$tag" /mnt; then
	echo "GUEST: mounted $tag ($opts)"
	if [ -f /mnt/.guest-test.sh ]; then
		cp /mnt/.guest-test.sh /tmp/t.sh
		sh /tmp/t.sh
		echo "GUEST: script exit $?"
	fi
	cd /
	umount /mnt && echo "GUEST: unmounted"
else
	echo "GUEST: mount failed"
fi
echo "GUEST: done"
poweroff -f
