#!/usr/bin/env bash
# bench/profile.sh: where a FUSE server's CPU time goes on the metadata and
# the 4 KiB random write jobs, passthrough_dax (defaults) against libfuse
# 3.14's passthrough_ll (defaults). Each server is mounted on a private
# tmpfs; `perf record -g` samples it for 5 s while the job runs, `perf stat`
# counts its CPU time and context switches. Prints the jobs' rates and,
# per server and job, the shares by object (kernel, libc, the server, the
# library) and the top of the call graph.
#
# Run as root, after scripts/setup.sh:  bench/profile.sh [OUTDIR]
# OUTDIR (default: a new directory under /var/tmp) keeps perf.data files.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PD=$REPO/build/example/passthrough_dax
PLL_SRC=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
[ "$(id -u)" -eq 0 ] || { echo "profile.sh: run as root" >&2; exit 2; }
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
[ -x "$PD" ] || { echo "profile.sh: $PD missing: run scripts/setup.sh" >&2; exit 2; }
[ -f "$PLL_SRC" ] || { echo "profile.sh: $PLL_SRC missing: apt-get install libfuse3-dev" >&2; exit 2; }

OUT=${1:-$(mktemp -d /var/tmp/fusedax-profile-XXXXXX)}
mkdir -p "$OUT"
W=$(mktemp -d /var/tmp/fusedax-profile-work-XXXXXX)
mkdir "$W/src" "$W/mnt"
daemon=
cleanup() {
	umount "$W/mnt" 2>/dev/null || true
	[ -n "$daemon" ] && kill "$daemon" 2>/dev/null || true
	umount "$W/src" 2>/dev/null || true
	rm -rf "$W"
}
trap cleanup EXIT
mount -t tmpfs -o size=2G tmpfs "$W/src"
cc -O2 "$REPO/bench/metadata.c" -o "$W/metadata"
cc -O2 -g "$PLL_SRC" -o "$W/passthrough_ll" $(pkg-config --cflags --libs fuse3)

fio_job() {	# runtime
	BENCH_DIR=$W/mnt BENCH_SIZE=256M BENCH_RUNTIME=$1 BENCH_RAMP=0 BENCH_NUMJOBS=1 \
		fio --output-format=terse "$REPO/bench/jobs/randwrite.fio" | cut -d';' -f49
}

for t in pd pll; do
	if [ "$t" = pd ]; then "$PD" -f -o "source=$W/src" "$W/mnt" &
	else "$W/passthrough_ll" -f -o "source=$W/src" "$W/mnt" &
	fi
	daemon=$!
	for _ in $(seq 50); do mountpoint -q "$W/mnt" && break; sleep 0.1; done
	mountpoint -q "$W/mnt" || { echo "profile.sh: $t did not mount" >&2; exit 1; }
	mkdir -p "$W/mnt/m"

	echo "profile: $t metadata (6 x 3000 files)"
	perf stat -e task-clock,context-switches -p "$daemon" -o "$OUT/$t-metadata.stat" -- sleep 6 &
	st=$!
	perf record -q -F 2000 -g -p "$daemon" -o "$OUT/$t-metadata.data" -- sleep 5 >/dev/null 2>&1 &
	rec=$!
	sleep 0.2
	for _ in 1 2 3 4 5 6; do "$W/metadata" "$W/mnt/m" 3000; done | sed 's/^/  /'
	wait "$st" "$rec"

	echo "profile: $t psync randwrite 4k (IOPS)"
	fio_job 1 >/dev/null	# lays the file out
	perf record -q -F 2000 -g -p "$daemon" -o "$OUT/$t-randwrite.data" -- sleep 5 >/dev/null 2>&1 &
	rec=$!
	sleep 0.2
	echo "  $(fio_job 5)"
	wait "$rec"
	rm -rf "$W"/src/fiobench.* "$W/src/m"

	umount "$W/mnt"
	wait "$daemon" || true
	daemon=
done

set +o pipefail	# head ends perf report's output early
for f in "$OUT"/*.data; do
	name=$(basename "$f" .data)
	echo "== $name: shares by object"
	perf report -i "$f" --no-children --sort dso --stdio -g none 2>/dev/null | grep '%' | head -6
	echo "== $name: call graph, top"
	perf report -i "$f" --no-children --sort sym --stdio 2>/dev/null | grep '%' | head -20
	[ -f "$OUT/${name}.stat" ] && grep -E 'task-clock|context-switches' "$OUT/${name}.stat"
done
echo "profile: perf data in $OUT"
