#!/bin/sh
# Build the libFuzzer targets with ASan+UBSan into build/fuzz/ and run each
# for SECONDS over a copy of its committed corpus plus freshly generated
# seeds. Exits non-zero on any crash, sanitizer report, leak or broken
# promise (the targets abort), or build error.
#
# Usage: test/fuzz/run_fuzz.sh [SECONDS] [TARGET...]
#   SECONDS  per target; default $FUSEDAX_FUZZ_SECONDS, else 45
#   TARGET   wire (fuzz_wire.c: the decoder alone) and/or session
#            (fuzz_session.c: decode + dispatch + replies + DAX window);
#            default both
# Extra libFuzzer flags can be passed in FUZZ_FLAGS (e.g. -detect_leaks=1).
set -eu

secs=${1:-${FUSEDAX_FUZZ_SECONDS:-45}}
if [ $# -gt 0 ]; then shift; fi
targets=${*:-wire session}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build/fuzz
cc=${CLANG:-clang}
san="-fsanitize=address,undefined -fno-sanitize-recover=all"
base="-g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -I$root/include -I$root/lib"

# The library files the session target runs: everything a low-level file
# system with a custom transport and a local DAX window links.
# Every library source (the session reaches into all of them: a new
# transport or helper is linked without editing this list). Optional
# dependencies such as liburing are left out, so their stubs are built.
session_lib=$(cd "$root/lib" && ls ./*.c | sed 's|^\./||; s|\.c$||')

mkdir -p "$out"
# shellcheck disable=SC2086
$cc $base -Werror $san "$root/test/fuzz/gen_corpus.c" "$root/lib/wire.c" \
	-o "$out/gen_corpus"

build_wire() {
	# shellcheck disable=SC2086
	$cc $base -Werror $san -fsanitize=fuzzer "$root/test/fuzz/fuzz_wire.c" \
		"$root/lib/wire.c" -o "$out/fuzz_wire"
}

build_session() {
	# Library sources are warning-checked by the meson build; here they
	# only need to compile, so a warning another compiler sees is no
	# reason to stop fuzzing. Our own file is held to -Werror.
	rm -rf "$out/session-obj"
	mkdir -p "$out/session-obj"
	srcs=
	for f in $session_lib; do
		srcs="$srcs $root/lib/$f.c"
	done
	# shellcheck disable=SC2086
	(cd "$out/session-obj" && $cc $base -Wno-unused-parameter \
		-Wno-sign-compare $san -fsanitize=fuzzer-no-link -c $srcs)
	# shellcheck disable=SC2086
	$cc $base -Werror -Wno-unused-parameter $san -fsanitize=fuzzer \
		"$root/test/fuzz/fuzz_session.c" "$out"/session-obj/*.o \
		-lpthread -o "$out/fuzz_session"
}

# run NAME MAX_LEN GEN_ARGS...: fuzz build/fuzz/fuzz_NAME for secs seconds.
run() {
	name=$1 maxlen=$2
	shift 2
	corpus=$out/corpus-$name
	artifacts=$out/artifacts-$name
	committed=$root/test/fuzz/corpus
	[ "$name" = wire ] || committed=$root/test/fuzz/corpus-$name

	rm -rf "$corpus" "$artifacts"
	mkdir -p "$corpus" "$artifacts"
	cp "$committed"/* "$corpus/" 2>/dev/null || true
	"$out/gen_corpus" "$@" "$corpus"

	echo "run_fuzz.sh: fuzzing $name for ${secs}s"
	status=0
	# shellcheck disable=SC2086
	"$out/fuzz_$name" -max_total_time="$secs" -max_len="$maxlen" \
		-timeout=10 -print_final_stats=1 \
		-artifact_prefix="$artifacts/" ${FUZZ_FLAGS:-} "$corpus" ||
		status=$?
	if [ "$status" -ne 0 ] || [ -n "$(ls -A "$artifacts")" ]; then
		echo "run_fuzz.sh: $name FAILED (exit $status); reproducers in $artifacts/" >&2
		ls -l "$artifacts" >&2
		return 1
	fi
	echo "run_fuzz.sh: $name: no crash in ${secs}s"
}

failed=0
for t in $targets; do
	case $t in
	wire)
		build_wire
		# Room for a full REMOVEMAPPING (44 + 256 * 16).
		run wire 8192 || failed=1
		;;
	session)
		build_session
		# Several requests per input, each up to a full REMOVEMAPPING.
		run session 16384 --session || failed=1
		;;
	*)
		echo "run_fuzz.sh: unknown target '$t' (wire, session)" >&2
		exit 2
		;;
	esac
done
exit $failed
