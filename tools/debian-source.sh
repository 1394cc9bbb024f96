#!/usr/bin/env bash
# Fetch and unpack a Debian source package without touching the machine's apt
# configuration: apt-get runs with a private sources list, package lists and
# archive cache under a cache directory, so nothing in /etc/apt or
# /var/lib/apt changes. Used for QEMU's source (tools/qemu-dax) and libfuse's
# (the compatibility suite); the unpacked tree is cached.
#
# Usage: tools/debian-source.sh PACKAGE SUITE [VERSION-PREFIX]
#   PACKAGE  source package name (qemu, fuse3, ...)
#   SUITE    bookworm, trixie, bookworm-backports, ...
#   VERSION-PREFIX  optional: refuse versions that do not start with it
# Prints the path of the unpacked source tree on stdout; progress on stderr.
# Env:  FUSEDAX_CACHE  cache root (default /var/cache/fusedax)
#       FUSEDAX_DEBIAN_MIRROR  archive URL (default http://deb.debian.org/debian)
# Exit: 0 ok, 77 when the archive cannot be reached (message on stderr),
#       1 on any other error.
set -euo pipefail

pkg=${1:?usage: debian-source.sh PACKAGE SUITE [VERSION-PREFIX]}
suite=${2:?usage: debian-source.sh PACKAGE SUITE [VERSION-PREFIX]}
want=${3:-}
root=${FUSEDAX_CACHE:-/var/cache/fusedax}
mirror=${FUSEDAX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
apt_dir=$root/apt/$suite
out_dir=$root/src/$suite

say() { echo "debian-source: $*" >&2; }

if ! command -v dpkg-source >/dev/null; then
	if [ "$(id -u)" -eq 0 ]; then
		say "installing dpkg-dev (for dpkg-source)"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q dpkg-dev >/dev/null
	else
		say "dpkg-source missing: install dpkg-dev"; exit 1
	fi
fi
[ -r "$keyring" ] || { say "no $keyring (package debian-archive-keyring)"; exit 1; }

mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$out_dir"
printf 'deb-src [signed-by=%s] %s %s main\n' "$keyring" "$mirror" "$suite" \
	> "$apt_dir/sources.list"

apt_private=(-o "Dir::Etc::SourceList=$apt_dir/sources.list"
	     -o "Dir::Etc::SourceParts=$apt_dir/no-parts.d"
	     -o "Dir::State::Lists=$apt_dir/lists"
	     -o "Dir::Cache=$apt_dir/cache"
	     -o "Dir::Cache::Archives=$apt_dir/archives"
	     -o "APT::Get::List-Cleanup=false"
	     -o "Debug::NoLocking=true")
mkdir -p "$apt_dir/no-parts.d" "$apt_dir/cache"

# Package lists: refresh at most once a day.
stamp=$apt_dir/lists.stamp
if ! [ -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +1440 2>/dev/null)" ]; then
	say "updating the private package lists for $suite"
	if ! apt-get -q "${apt_private[@]}" update >"$apt_dir/update.log" 2>&1; then
		say "apt-get update for $suite failed (no access to $mirror?); see $apt_dir/update.log"
		exit 77
	fi
	touch "$stamp"
fi

version=$(apt-cache "${apt_private[@]}" showsrc "$pkg" 2>/dev/null |
	sed -n 's/^Version: //p' | sort -V | tail -1)
[ -n "$version" ] || { say "no source package $pkg in $suite"; exit 1; }
case "$version" in
"$want"*) ;;
*) say "$pkg in $suite is $version, expected $want*"; exit 1 ;;
esac

tree=$out_dir/$pkg-$version
if [ -f "$tree/.unpacked" ]; then
	echo "$tree"
	exit 0
fi
dl=$out_dir/dl-$pkg-$version
rm -rf "$dl" "$tree" && mkdir -p "$dl"
say "downloading $pkg $version ($suite)"
if ! (cd "$dl" && apt-get -q "${apt_private[@]}" source --download-only "$pkg=$version" \
	>"$dl/source.log" 2>&1); then
	say "apt-get source $pkg=$version failed; see $dl/source.log"
	exit 77
fi
# apt already checked the files against the archive's signed index; the
# .dsc's own signature is by a maintainer whose key the machine lacks.
(cd "$dl" && dpkg-source --no-check -x "$(ls ./*.dsc | head -1)" "$tree" >/dev/null)
touch "$tree/.unpacked"
echo "$tree"
