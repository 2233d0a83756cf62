#!/bin/sh
# make fuzz-smoke: run every libFuzzer harness for FUZZ_SECONDS under
# ASan+UBSan, one after the other, and fail if any of them finds a crash, a
# leak, undefined behaviour or a broken property.
#
#   smoke.sh SRCDIR BUILDDIR
#
# From the Makefile: FUZZ_HERE=yes in a build configured --enable-fuzzing;
# in any other build this script configures one
# in BUILDDIR/build-fuzz (CC=${FUZZ_CC:-clang}) and runs there instead.
# Each harness fuzzes a work corpus in BUILDDIR/fuzz-work/NAME seeded from
# tests/fuzz/corpus/NAME (the repository's corpus is only read); crash
# inputs land in BUILDDIR/fuzz-work/NAME/artifacts. Copy a crash into
# tests/fuzz/corpus/NAME once it is fixed: `make check` replays it from then
# on.
set -eu

src=$1
build=$2
seconds=${FUZZ_SECONDS:-60}
make=${MAKE:-make}

if [ "${FUZZ_HERE:-no}" != yes ]; then
	fb=$build/build-fuzz
	mkdir -p "$fb"
	if [ ! -f "$fb/Makefile" ]; then
		echo "fuzz-smoke: configuring a fuzzing build in $fb"
		(cd "$fb" && CC=${FUZZ_CC:-clang} "$src/configure" --quiet \
			--enable-fuzzing) || {
			echo "fuzz-smoke: configure failed; on Debian 12:" \
				"apt-get install clang libclang-rt-14-dev" >&2
			exit 1
		}
	fi
	exec $make -C "$fb" fuzz-smoke FUZZ_SECONDS="$seconds"
fi

cd "$build"
echo "fuzz-smoke: building ${FUZZ_HARNESSES}"
$make $FUZZ_HARNESSES >/dev/null

# the last value of a "stat::NAME: VALUE" line, or of "cov: N" progress
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }
progress() { grep -o "$1: [0-9]*" "$2" | tail -n 1 | sed 's/.*: //'; }

failed=
for h in $FUZZ_HARNESSES; do
	name=${h##*/fuzz_}
	work=$build/fuzz-work/$name
	mkdir -p "$work/corpus" "$work/artifacts"
	dict=
	[ -f "$src/tests/fuzz/dict/$name.dict" ] &&
		dict=-dict=$src/tests/fuzz/dict/$name.dict
	rc=0
	# from tests/fuzz/include, where the config harness's @include
	# names lead (see fuzz_config.c); every path given is absolute
	(cd "$src/tests/fuzz/include" &&
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
		"$build/$h" -max_total_time="$seconds" -timeout=10 \
			-rss_limit_mb=2048 -print_final_stats=1 $dict \
			-artifact_prefix="$work/artifacts/" \
			"$work/corpus" "$src/tests/fuzz/corpus/$name") \
		>"$work/log" 2>&1 || rc=$?
	printf 'fuzz-smoke: %-12s %s s, %s runs (%s/s), cov %s, ft %s, corpus %s (%s new), peak RSS %s MB: ' \
		"$name" "$seconds" \
		"$(stat number_of_executed_units "$work/log")" \
		"$(stat average_exec_per_sec "$work/log")" \
		"$(progress cov "$work/log")" "$(progress ft "$work/log")" \
		"$(progress corp "$work/log")" \
		"$(stat new_units_added "$work/log")" \
		"$(stat peak_rss_mb "$work/log")"
	if [ "$rc" -eq 0 ]; then
		echo OK
	else
		echo "FAILED (exit $rc)"
		tail -n 40 "$work/log"
		ls -l "$work/artifacts"
		failed="$failed $name"
	fi
done
if [ -n "$failed" ]; then
	echo "fuzz-smoke: failed:$failed (logs and inputs in $build/fuzz-work)" >&2
	exit 1
fi
echo "fuzz-smoke: every harness ran ${seconds} s without a finding"
