#!/bin/sh
# make check-long: natterd under AddressSanitizer (leak checking on) for
# SOAK_SECONDS (600) of mixed load from tests/nt_soak (chat fan-out, echo,
# connection churn), reloaded with SIGHUP every SOAK_RELOAD seconds (15).
#
#   soak.sh SRCDIR BUILDDIR
#
# From the Makefile: SOAK_SAN is the build's sanitizer flags; with address
# among them the soak runs in this build, otherwise this script configures
# one in BUILDDIR/build-soak and runs there.
#
# It passes when the load generator saw no error, natterd exits 0 on
# SIGTERM with no leak and no sanitizer report, its fd count is back where
# it was, and its RSS once the clients have left is within 10% of where it
# was before the soak. "Before" is measured after a warm-up (SOAK_WARMUP
# seconds, 30, of the same load, then the clients leave): a fresh process
# has not yet grown its allocator's pools to their working size, and
# comparing with that would measure the pools, not a leak. The figures are
# printed as a Markdown table for BENCHMARKS.md.
set -eu

src=$1
build=$2
secs=${SOAK_SECONDS:-600}
warmup=${SOAK_WARMUP:-30}
every=${SOAK_RELOAD:-15}
make=${MAKE:-make}

case "${SOAK_SAN:-}" in
*address*) here=yes ;;
*) here=no ;;
esac
if [ "$here" != yes ]; then
	sb=$build/build-soak
	mkdir -p "$sb"
	if [ ! -f "$sb/Makefile" ]; then
		echo "soak: configuring an ASan+UBSan build in $sb"
		(cd "$sb" && "$src/configure" --quiet \
			--enable-sanitizers=address,undefined)
	fi
	exec $make -C "$sb" check-long SOAK_SECONDS="$secs" \
		SOAK_WARMUP="$warmup" SOAK_RELOAD="$every"
fi

cd "$build"
$make daemon/natterd tests/nt_soak >/dev/null
natterd=$build/daemon/natterd
soak=$build/tests/nt_soak
dir=$(mktemp -d "${TMPDIR:-/tmp}/nt-soak-XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/natterd.conf" <<EOF
workers = 2;
max_connections = 4000;
limits = { per_ip = 0; max_output = 1048576; };
timeouts = { idle = 60; write = 30; line = 30; shutdown_grace = 10; };
chat = { flood = { rate = 50; burst = 100; }; };
listeners = (
  { name = "chat"; service = "chat"; address = "127.0.0.1"; port = 0; },
  { name = "echo"; service = "echo"; address = "127.0.0.1"; port = 0; }
);
EOF

# leaks reported at exit; a small quarantine and memory given back to the
# system, so that RSS follows what natterd holds, not what passed through
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:quarantine_size_mb=16:allocator_release_to_os_interval_ms=1000:log_path=$dir/asan"
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}print_stacktrace=1:log_path=$dir/ubsan"
export ASAN_OPTIONS UBSAN_OPTIONS

"$natterd" -c "$dir/natterd.conf" >"$dir/natterd.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
	grep -q " ready" "$dir/natterd.log" && break
	sleep 0.1
done
grep -q " ready" "$dir/natterd.log" || {
	cat "$dir/natterd.log"
	echo "soak: natterd did not start" >&2
	exit 1
}
port() { sed -n "s/.*listening on 127.0.0.1:\([0-9]*\) ($1).*/\1/p" \
	"$dir/natterd.log" | head -n 1; }
chat=$(port chat)
echo=$(port echo)
rss() { sed -n 's/^VmRSS:[^0-9]*\([0-9]*\).*/\1/p' /proc/$pid/status; }
fds() { ls /proc/$pid/fd | wc -l; }
settle() { sleep 4; } # lingering connections end within 2 s

rss_idle=$(rss)
echo "soak: natterd (ASan) on chat $chat, echo $echo; warm-up ${warmup} s"
"$soak" --chat "$chat" --echo "$echo" --seconds "$warmup" >"$dir/warmup" ||
	{ cat "$dir/warmup"; echo "soak: the warm-up failed" >&2; exit 1; }
settle
rss_start=$(rss)
fds_start=$(fds)
cpu_start=$(awk '{print $14 + $15}' /proc/$pid/stat)

echo "soak: ${secs} s of load, a reload every ${every} s"
"$soak" --chat "$chat" --echo "$echo" --seconds "$secs" >"$dir/soak" 2>&1 &
spid=$!
t=0 reloads=0 rss_peak=$rss_start
while kill -0 "$spid" 2>/dev/null; do
	sleep 1
	t=$((t + 1))
	r=$(rss)
	[ "$r" -gt "$rss_peak" ] && rss_peak=$r
	if [ $((t % every)) -eq 0 ] && [ "$t" -lt "$secs" ]; then
		kill -HUP "$pid"
		reloads=$((reloads + 1))
	fi
	[ $((t % 60)) -eq 0 ] && echo "soak: ${t} s, RSS ${r} kB, $(fds) fds"
done
soak_rc=0
wait "$spid" || soak_rc=$?
settle
rss_end=$(rss)
fds_end=$(fds)
cpu_end=$(awk '{print $14 + $15}' /proc/$pid/stat)
reloaded=$(grep -c "reloaded " "$dir/natterd.log" || true)

kill -TERM "$pid"
natterd_rc=0
wait "$pid" || natterd_rc=$?
pid=

leaks=$(cat "$dir"/asan* 2>/dev/null | grep -c "LeakSanitizer" || true)
asan=$(cat "$dir"/asan* 2>/dev/null | grep -c "ERROR: AddressSanitizer" || true)
ubsan=$(cat "$dir"/ubsan* 2>/dev/null | grep -c "runtime error" || true)
limit=$((rss_start + rss_start / 10))
hz=$(getconf CLK_TCK)

cat "$dir/soak"
echo
echo "| soak | |"
echo "| --- | --- |"
echo "| load | $(sed -n 's/^nt_soak: //p' "$dir/soak") |"
echo "| reloads (SIGHUP) | $reloads sent, $reloaded logged as done |"
echo "| natterd CPU | $(((cpu_end - cpu_start) / hz)) s over the soak |"
echo "| RSS, kB | idle $rss_idle; after warm-up $rss_start; peak $rss_peak; clients gone $rss_end (limit $limit) |"
echo "| fds | $fds_start before, $fds_end after |"
echo "| natterd exit | $natterd_rc |"
echo "| LeakSanitizer / ASan / UBSan reports | $leaks / $asan / $ubsan |"

fail=
[ "$soak_rc" -eq 0 ] || fail="$fail load-errors"
[ "$natterd_rc" -eq 0 ] || fail="$fail exit-$natterd_rc"
[ "$leaks" -eq 0 ] && [ "$asan" -eq 0 ] && [ "$ubsan" -eq 0 ] ||
	fail="$fail sanitizer"
[ "$rss_end" -le "$limit" ] || fail="$fail rss"
[ "$fds_end" -eq "$fds_start" ] || fail="$fail fds"
if [ -n "$fail" ]; then
	cat "$dir"/asan* "$dir"/ubsan* 2>/dev/null | head -n 80
	grep -v " info: " "$dir/natterd.log" | tail -n 40
	echo "soak: FAILED:$fail" >&2
	exit 1
fi
echo "soak: passed"
