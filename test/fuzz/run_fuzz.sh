#!/bin/sh
# Build the wire decoder's libFuzzer target with ASan+UBSan into build/fuzz/
# and run it for SECONDS (default 60) over a copy of test/fuzz/corpus plus
# freshly generated seeds. Exits non-zero on any crash or sanitizer report.
# Usage: test/fuzz/run_fuzz.sh [SECONDS]
set -eu

secs=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build/fuzz
cc=${CLANG:-clang}
flags="-g -O1 -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror \
 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 -I$root/include -I$root/lib"

mkdir -p "$out"
# shellcheck disable=SC2086
$cc $flags "$root/test/fuzz/fuzz_wire.c" "$root/lib/wire.c" \
	-o "$out/fuzz_wire"
# shellcheck disable=SC2086
$cc -g -O1 -std=gnu11 -Wall -Wextra -Werror -fsanitize=address,undefined \
	-I"$root/include" -I"$root/lib" \
	"$root/test/fuzz/gen_corpus.c" "$root/lib/wire.c" -o "$out/gen_corpus"

rm -rf "$out/corpus" "$out/artifacts"
mkdir -p "$out/corpus" "$out/artifacts"
cp "$root"/test/fuzz/corpus/* "$out/corpus/" 2>/dev/null || true
"$out/gen_corpus" "$out/corpus"

# libFuzzer exits non-zero on a crash, a sanitizer report, a leak or a
# timeout; -max_len leaves room for a full REMOVEMAPPING (44 + 256 * 16).
status=0
"$out/fuzz_wire" -max_total_time="$secs" -max_len=8192 -timeout=10 \
	-print_final_stats=1 -artifact_prefix="$out/artifacts/" \
	"$out/corpus" || status=$?

if [ "$status" -ne 0 ] || [ -n "$(ls -A "$out/artifacts")" ]; then
	echo "run_fuzz.sh: FAILED (exit $status); reproducers in $out/artifacts/" >&2
	ls -l "$out/artifacts" >&2
	exit 1
fi
echo "run_fuzz.sh: no crash in ${secs}s"
