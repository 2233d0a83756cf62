#!/usr/bin/env bash
# make bench: natterd side by side with the reference echo server
# (bench/refecho) and the peers a user would pick instead (socat and
# ncat -e /bin/cat for echo, ncat --chat and ngircd for chat), measured
# with natter-bench on loopback. Each scenario runs BENCH_RUNS (3) times,
# the servers alternating within each round; the medians with min..max
# go into BENCHMARKS.md between the bench markers, with the machine and
# the exact commands.
#
#   run.sh SRCDIR BUILDDIR
#
# BENCH_RUNS (3), BENCH_SECONDS (10, measured seconds per run),
# BENCH_ONLY (a space-separated list of scenario names: only those run,
# and the report goes to stdout), BENCH_OUT (where the report goes:
# BENCHMARKS.md in SRCDIR, or "-" for stdout only), BENCH_BASE (the build
# directory of another natterd, a baseline: it runs as base-natterd-echo and
# base-natterd-chat beside natterd in every echo and chat scenario, the two
# alternating round by round, and in the callgrind count), BENCH_SERVERS (a
# space-separated list of servers: only those run).
set -euo pipefail

src=$(cd "${1:?usage: run.sh SRCDIR BUILDDIR}" && pwd)
build=$(cd "${2:?usage: run.sh SRCDIR BUILDDIR}" && pwd)
runs=${BENCH_RUNS:-3}
secs=${BENCH_SECONDS:-10}
only=${BENCH_ONLY:-}
# a partial run prints its report but leaves BENCHMARKS.md alone
if [ -n "$only" ]; then
	out=${BENCH_OUT:--}
else
	out=${BENCH_OUT:-$src/BENCHMARKS.md}
fi
ncpu=$(nproc)
servers_only=${BENCH_SERVERS:-}

natterd=$build/daemon/natterd
nb=$build/tools/natter-bench
refecho=$build/bench/refecho
base_natterd=
[ -n "${BENCH_BASE:-}" ] && base_natterd=$(cd "$BENCH_BASE" && pwd)/daemon/natterd
for b in "$natterd" "$nb" "$refecho" ${base_natterd:+"$base_natterd"}; do
	[ -x "$b" ] || {
		echo "bench: $b is not built (make bench builds it)" >&2
		exit 1
	}
done

# the peers come from Debian's packages
need=()
command -v ncat >/dev/null || need+=(ncat)
command -v socat >/dev/null || need+=(socat)
[ -x /usr/sbin/ngircd ] || need+=(ngircd)
command -v valgrind >/dev/null || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench: please install as root: apt-get install ${need[*]}" >&2
		exit 1
	fi
	echo "bench: installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${need[@]}" >/dev/null
	# Debian starts the ngircd it installs; we run our own
	pkill -x ngircd 2>/dev/null || true
fi

work=$(mktemp -d /tmp/natter-bench.XXXXXX)
results=$work/results
: >"$results"
srv_pid=
fit=0
# a -pinned scenario runs the server on CPU 0 and natter-bench on CPU 1
srv_wrap=()
nb_wrap=()

stop_server() {
	[ -n "$srv_pid" ] || return 0
	kill -TERM "$srv_pid" 2>/dev/null || true
	local i
	# up to 30 s: under valgrind the exit (and its summary) takes a while
	for i in $(seq 1 300); do
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$srv_pid" 2>/dev/null || true
	wait "$srv_pid" 2>/dev/null || true
	# socat and ncat -e leave a child per connection
	pkill -KILL -P "$srv_pid" 2>/dev/null || true
	srv_pid=
}
cleanup() {
	stop_server
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# a free port below the ephemeral range, so no client socket takes it
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || {
			echo "$p"
			return 0
		}
	done
	echo "bench: no free port found" >&2
	return 1
}

wait_port() {
	local i
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "bench: server did not listen on port $1" >&2
	return 1
}

# wait until FILE has a line matching REGEX; print its first match
wait_line() {
	local i
	for i in $(seq 1 100); do
		if grep -m1 -E "$2" "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "bench: no '$2' in $1:" >&2
	cat "$1" >&2
	return 1
}

natterd_conf() { # SERVICE MAXCONN [WORKERS]
	cat >"$work/natterd.conf" <<EOF
workers = ${3:-0};
max_connections = $2;
log_level = "warning";
limits = { per_ip = 0; max_output = 4194304; };
timeouts = { idle = 3600; write = 60; line = 60; shutdown_grace = 2; };
chat = { motd = "bench"; max_rooms = 100;
	flood = { rate = 10000; burst = 100000; }; };
listeners = ( { name = "bench"; service = "$1"; family = "ipv4";
	address = "127.0.0.1"; port = 0; backlog = 4096; } );
EOF
}

# launch_natterd [WRAPPER ARGS...]: natterd ($srv_natterd, natterd unless
# the baseline is meant) on $work/natterd.conf (under WRAPPER, valgrind say,
# if given); sets srv_pid and port once it is ready
srv_natterd=$natterd
launch_natterd() {
	local log=$work/server.log
	"$@" "$srv_natterd" -c "$work/natterd.conf" --log-level info >"$log" 2>&1 &
	srv_pid=$!
	port=$(wait_line "$log" 'listening on 127\.0\.0\.1:[0-9]+' |
		sed -E 's/.*127\.0\.0\.1:([0-9]+).*/\1/')
	wait_line "$log" 'ready' >/dev/null
}

# launch_refecho [WRAPPER ARGS...]: the same for refecho
launch_refecho() {
	local log=$work/server.log
	"$@" "$refecho" -p 0 >"$log" 2>&1 &
	srv_pid=$!
	port=$(wait_line "$log" 'listening on' | sed -E 's/.*:([0-9]+)$/\1/')
}

# start_server NAME: sets srv_pid and port
start_server() {
	local log=$work/server.log
	: >"$log"
	srv_natterd=$natterd
	case $1 in
	base-natterd-echo | base-natterd-chat)
		srv_natterd=$base_natterd
		natterd_conf "${1#base-natterd-}" 20000
		launch_natterd "${srv_wrap[@]}"
		;;
	natterd-echo | natterd-chat | natterd-echo-w1)
		case $1 in
		natterd-echo-w1) natterd_conf echo 20000 1 ;;
		*) natterd_conf "${1#natterd-}" 20000 ;;
		esac
		launch_natterd "${srv_wrap[@]}"
		;;
	natterd-hold)
		# as many clients as the fd limit lets in: natterd says how
		# many that is and serves them
		natterd_conf echo 100000
		launch_natterd
		fit=$(grep -m1 -oE 'accept at most [0-9]+' "$log" | grep -oE '[0-9]+$')
		;;
	refecho)
		launch_refecho "${srv_wrap[@]}"
		;;
	socat)
		port=$(free_port)
		socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,backlog=4096" \
			PIPE >"$log" 2>&1 &
		srv_pid=$!
		wait_port "$port"
		;;
	ncat-echo)
		port=$(free_port)
		ncat -l -k -m 5000 127.0.0.1 "$port" -e /bin/cat >"$log" 2>&1 &
		srv_pid=$!
		wait_port "$port"
		;;
	ncat-chat)
		port=$(free_port)
		ncat -l -k -m 5000 --chat 127.0.0.1 "$port" >"$log" 2>&1 &
		srv_pid=$!
		wait_port "$port"
		;;
	ngircd)
		port=$(free_port)
		cat >"$work/ngircd.conf" <<EOF
[Global]
	Name = bench.natter.test
	Info = natter bench
	Listen = 127.0.0.1
	Ports = $port
	MotdPhrase = bench
[Limits]
	MaxConnections = 0
	MaxConnectionsIP = 0
	MaxJoins = 0
	MaxNickLength = 16
	MaxPenaltyTime = 0
	PingTimeout = 3600
	PongTimeout = 600
[Options]
	DNS = no
	Ident = no
	PAM = no
EOF
		/usr/sbin/ngircd -n -f "$work/ngircd.conf" >"$log" 2>&1 &
		srv_pid=$!
		wait_port "$port"
		;;
	*)
		echo "bench: unknown server $1" >&2
		return 1
		;;
	esac
}

# run SCENARIO SERVER NATTER-BENCH-ARGS...: one measurement
run() {
	local scen=$1 srv=$2 line
	shift 2
	case $scen in
	*-pinned) srv_wrap=(taskset -c 0) nb_wrap=(taskset -c 1) ;;
	*) srv_wrap=() nb_wrap=() ;;
	esac
	start_server "$srv"
	local args=("$@")
	args=("${args[@]//@PORT@/$port}")
	args=("${args[@]//@PID@/$srv_pid}")
	case $srv in
	natterd* | base-natterd*) args=("${args[@]//@PROTO@/natter}") ;;
	ncat*) args=("${args[@]//@PROTO@/ncat}") ;;
	ngircd) args=("${args[@]//@PROTO@/irc}") ;;
	esac
	args=("${args[@]//@FIT@/$fit}")
	echo "bench: $scen $srv: natter-bench ${args[*]}" >&2
	line=$("${nb_wrap[@]}" "$nb" "${args[@]}" -q 2>"$work/nb.err" |
		grep '^RESULT' || true)
	stop_server
	if [ -z "$line" ]; then
		echo "bench: $scen $srv: no RESULT line" >&2
		cat "$work/nb.err" >&2
		line="RESULT failed=1"
	fi
	echo "  $line" >&2
	echo "$scen $srv ${line#RESULT }" >>"$results"
	# let TIME_WAIT sockets and the kernel settle between runs
	sleep 1
}

want() {
	[ -z "$only" ] && return 0
	case " $only " in *" $1 "*) return 0 ;; esac
	return 1
}

# scenario NAME "SERVERS" NATTER-BENCH-ARGS...: every server, BENCH_RUNS
# rounds, the order turning round by round
declare -A scen_cmd
scen_order=()
scenario() {
	local name=$1 servers=$2
	shift 2
	want "$name" || return 0
	scen_order+=("$name")
	scen_cmd[$name]="natter-bench $*"
	local -a srv
	local s
	# the baseline runs beside natterd, and BENCH_SERVERS picks
	if [ -n "$base_natterd" ]; then
		servers=$(echo "$servers" | sed -E 's/(^| )(natterd-(echo|chat))( |$)/\1\2 base-\2\4/')
	fi
	if [ -n "$servers_only" ]; then
		local picked=
		for s in $servers; do
			case " $servers_only " in *" $s "*) picked+=" $s" ;; esac
		done
		servers=$picked
	fi
	read -ra srv <<<"$servers"
	local r i n=${#srv[@]}
	for r in $(seq 1 "$runs"); do
		for i in $(seq 0 $((n - 1))); do
			run "$name" "${srv[$(((i + r - 1) % n))]}" "$@"
		done
	done
}

T=(-t "$secs" -W 1)
scenario echo-50x8 "natterd-echo natterd-echo-w1 refecho socat ncat-echo" \
	echo -p @PORT@ -c 50 -D 8 -s 64 -T 1 "${T[@]}"
scenario echo-1000x1 "natterd-echo natterd-echo-w1 refecho socat ncat-echo" \
	echo -p @PORT@ -c 1000 -D 1 -s 64 -T 1 "${T[@]}"
# the same with a core for the server and one for the load generator
if [ "$ncpu" -ge 2 ]; then
	scenario echo-50x8-pinned "natterd-echo refecho" \
		echo -p @PORT@ -c 50 -D 8 -s 64 -T 1 "${T[@]}"
	scenario echo-1000x1-pinned "natterd-echo refecho" \
		echo -p @PORT@ -c 1000 -D 1 -s 64 -T 1 "${T[@]}"
fi
scenario chat-fanout-50 "natterd-chat ncat-chat ngircd" \
	chat -p @PORT@ -c 50 -k 4 --window 16 "${T[@]}" --proto @PROTO@
scenario chat-fanout-200 "natterd-chat ncat-chat ngircd" \
	chat -p @PORT@ -c 200 -k 4 --window 16 "${T[@]}" --proto @PROTO@
scenario chat-latency-200 "natterd-chat ncat-chat ngircd" \
	chat -p @PORT@ -c 200 -k 4 --rate 50 "${T[@]}" --proto @PROTO@
scenario churn-40 "natterd-echo refecho" \
	churn -p @PORT@ -P 32 --sources 40 "${T[@]}"
scenario hold "natterd-hold" \
	hold -p @PORT@ -c @FIT@ --sources 40 --server-pid @PID@ --hold-time 2

# result_key LINE KEY: the value of KEY in a RESULT line, or nothing
result_key() {
	echo "$1" | grep -oE "(^| )$2=[^ ]+" | cut -d= -f2 || true
}

# an awk function: fields 2.. of a "name key=value ..." line into f[]
kv_awk='function kv(  i, a) { delete f; for (i = 2; i <= NF; i++) { split($i, a, "="); f[a[1]] = a[2] } }'

# ---- counted, not timed: valgrind ---------------------------------------
# These count allocations and instructions, which do not depend on what
# else the machine is doing, so one run of each is enough.

vg_log=$work/vg.log
counts=$work/counts
: >"$counts"

# vg_start TOOL SERVICE ARGS...: natterd (or refecho for SERVICE refecho)
# under valgrind; sets srv_pid and port
vg_start() {
	local tool=$1 svc=$2
	shift 2
	: >"$vg_log"
	if [ "$svc" = refecho ]; then
		launch_refecho valgrind --tool="$tool" --log-file="$vg_log" "$@"
		return
	fi
	natterd_conf "$svc" 1000
	launch_natterd valgrind --tool="$tool" --log-file="$vg_log" "$@"
}

# allocations natterd makes for M lines from each of K senders into a
# room of R: its heap summary, less the set-up (a run with M0 lines)
VG_SENDERS=4
VG_M0=50
VG_M1=550
allocs_run() { # ROOM MESSAGES
	vg_start memcheck chat --leak-check=no
	local args=(chat -p "$port" -c "$1" -k "$VG_SENDERS" --window 16
		--messages "$2" -t 120 -W 0 -q)
	echo "bench: allocs: natter-bench ${args[*]} (natterd under memcheck)" >&2
	"$nb" "${args[@]}" >"$work/nb.out" 2>"$work/nb.err" || {
		echo "bench: allocs: natter-bench failed:" >&2
		cat "$work/nb.out" "$work/nb.err" >&2
		stop_server
		echo 0
		return
	}
	stop_server
	grep -oE 'total heap usage: [0-9,]+ allocs' "$vg_log" |
		grep -oE '[0-9,]+' | head -n1 | tr -d , || true
}
if want allocs; then
	for room in 20 200; do
		a0=$(allocs_run "$room" "$VG_M0")
		a1=$(allocs_run "$room" "$VG_M1")
		echo "allocs room=$room m0=$VG_M0 m1=$VG_M1 senders=$VG_SENDERS" \
			"allocs0=$a0 allocs1=$a1" >>"$counts"
		echo "  allocs room $room: $a0 with $VG_M0 lines per sender," \
			"$a1 with $VG_M1" >&2
	done
fi

# instructions per echoed message: callgrind counting only while
# natter-bench runs (the set-up and the shutdown are left out). It starts
# with instrumentation off, which callgrind_control -i turns on and off;
# --collect-atstart=no would not do: -i does not turn collection on, so
# that counts nothing.
CG_ARGS=(-c 10 -D 1 -s 64 -t 3 -W 0.5)
cg_run() { # SERVICE
	local out=$work/callgrind.out
	rm -f "$out"
	vg_start callgrind "$1" --instr-atstart=no \
		--callgrind-out-file="$out"
	callgrind_control -i on "$srv_pid" >/dev/null
	local line
	line=$("$nb" echo -p "$port" "${CG_ARGS[@]}" -q 2>"$work/nb.err" || true)
	callgrind_control -i off "$srv_pid" >/dev/null
	stop_server
	local msgs ir
	msgs=$(result_key "$line" total_msgs)
	ir=$(awk '/^totals:/ { print $2; exit }' "$out" 2>/dev/null || true)
	echo "callgrind server=${cg_label:-$1} msgs=${msgs:-0} ir=${ir:-0}" >>"$counts"
	echo "  callgrind $1: ${ir:-?} instructions for ${msgs:-?} messages" >&2
}
if want callgrind; then
	echo "bench: callgrind: natter-bench echo -p PORT ${CG_ARGS[*]}" >&2
	cg_run echo
	if [ -n "$base_natterd" ]; then
		srv_natterd=$base_natterd cg_label=base-natterd-echo cg_run echo
	fi
	cg_run refecho
fi

# ---- why a tail: time spent waiting for a core ---------------------------
# With the load generator on the same cores, a server with more threads
# than there are free cores waits in the run queue. The kernel counts that
# per thread (/proc/PID/task/TID/schedstat: time on a core, time waiting
# for one): summed over the server's threads and over natter-bench's for
# one echo-1000x1 and one churn-40 run each.

# sched_ns PID FIELD: the sum of FIELD (1 on a core, 2 waiting) over PID's
# threads, in ns
sched_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null |
		awk -v f="$2" '{ t += $f } END { printf "%.0f\n", t }'
}
SCHED_ECHO=(echo -c 1000 -D 1 -s 64 -T 1 -t 5 -W 1)
SCHED_CHURN=(churn -P 32 --sources 40 -t 5 -W 1)
sched_run() { # NAME SERVER MODE ARGS...
	local name=$1 srv=$2
	shift 2
	local mode=$1 unit=conns count_key=conns
	shift
	# echo counts messages (all of them, as the CPU time is for all)
	[ "$mode" = echo ] && unit=msgs count_key=total_msgs
	start_server "$srv"
	local s_run0 s_wait0 s_run1 s_wait1 b_run b_wait nbp line
	s_run0=$(sched_ns "$srv_pid" 1)
	s_wait0=$(sched_ns "$srv_pid" 2)
	"$nb" "$mode" -p "$port" "$@" -q >"$work/nb.out" 2>"$work/nb.err" &
	nbp=$!
	# natter-bench's own counters, read just before its window ends
	sleep 5.5
	b_run=$(sched_ns "$nbp" 1)
	b_wait=$(sched_ns "$nbp" 2)
	wait "$nbp" || true
	s_run1=$(sched_ns "$srv_pid" 1)
	s_wait1=$(sched_ns "$srv_pid" 2)
	line=$(grep '^RESULT' "$work/nb.out" || true)
	stop_server
	echo "sched name=$name server=$srv srv_run=$((s_run1 - s_run0))" \
		"srv_wait=$((s_wait1 - s_wait0))" \
		"nb_run=$b_run nb_wait=$b_wait" \
		"p99=$(result_key "$line" p99_us)" \
		"rate=$(result_key "$line" "$unit"_per_s)" \
		"count=$(result_key "$line" "$count_key")" >>"$counts"
	sleep 1
}
if want sched; then
	echo "bench: sched: natter-bench ${SCHED_ECHO[*]}; ${SCHED_CHURN[*]}" >&2
	for v in natterd-echo natterd-echo-w1 refecho; do
		sched_run echo-1000x1 "$v" "${SCHED_ECHO[@]}"
	done
	for v in natterd-echo natterd-echo-w1 refecho; do
		sched_run churn-40 "$v" "${SCHED_CHURN[@]}"
	done
fi

# ---- the report ---------------------------------------------------------

# stat SCEN SRV KEY: "median (min..max)" over the runs, or "-"
stat() {
	awk -v s="$1" -v v="$2" -v k="$3" '
	$1 == s && $2 == v {
		for (i = 3; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == k) x[n++] = kv[2] + 0
		}
	}
	END {
		if (!n) { print "-"; exit }
		for (i = 0; i < n; i++)
			for (j = i + 1; j < n; j++)
				if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		m = n % 2 ? x[(n - 1) / 2] : (x[n / 2 - 1] + x[n / 2]) / 2
		f = (m >= 100 || m == int(m)) ? "%.0f" : "%.2f"
		if (n == 1) printf f "\n", m
		else printf f " (" f ".." f ")\n", m, x[0], x[n - 1]
	}' "$results"
}
# median SCEN SRV KEY: the bare median
median() { stat "$@" | awk '{ print $1 }'; }
# ratio A B: A/B to two decimals
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "-" || b == "-" || b + 0 == 0) print "-";
		else printf "%.2f\n", a / b }'
}
# sum over all runs of a scenario of KEY (for lost, reordered, errors)
total() {
	awk -v s="$1" -v v="$2" -v k="$3" '$1 == s && $2 == v {
		for (i = 3; i <= NF; i++) { split($i, kv, "=");
			if (kv[1] == k) t += kv[2] } } END { print t + 0 }' "$results"
}
servers_of() {
	awk -v s="$1" '$1 == s && !seen[$2]++ { print $2 }' "$results"
}
# base_ratio SCENARIO SERVICE RATE-KEY: natterd against the baseline build,
# when BENCH_BASE ran one
base_ratio() {
	servers_of "$1" | grep -qx "base-natterd-$2" || return 0
	echo "natterd / base-natterd-$2 (BENCH_BASE): $3" \
		"$(ratio "$(median "$1" "natterd-$2" "$3")" \
			"$(median "$1" "base-natterd-$2" "$3")")," \
		"p99 $(ratio "$(median "$1" "natterd-$2" p99_us)" \
			"$(median "$1" "base-natterd-$2" p99_us)")."
}

report() {
	local cpu kernel
	cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
	kernel=$(uname -r)
	echo "<!-- bench:start (written by make bench: bench/run.sh) -->"
	echo "## make bench"
	echo
	echo "Run on $(date -u +%Y-%m-%d) on $ncpu cores of \`${cpu:-unknown}\`,"
	echo "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo),"
	echo "Linux $kernel, $(gcc --version | head -n1),"
	echo "$("$natterd" --version 2>/dev/null | head -n1) at" \
		"\`$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo '?')\`"
	echo "built with the default \`-g -O2\`, \`workers = 0\` ($ncpu"
	echo "workers); the echo scenarios also run natterd with \`workers = 1\`"
	echo "(natterd-echo-w1), the setting for a machine one of whose cores"
	echo "belongs to something else, as it does here: natter-bench runs on"
	echo "the same machine, so server and load generator share the cores."
	echo "The -pinned scenarios give each its own: the server runs under"
	echo "\`taskset -c 0\` (so natterd's \`workers = 0\` means one worker, the"
	echo "one CPU it may use) and natter-bench under \`taskset -c 1\`."
	echo "ncat -e starts one /bin/cat per client and here ran only 120 to"
	echo "260 of them at once: in echo-1000x1 the other clients never get"
	echo "an answer, which natter-bench counts as errors. Each figure is the"
	echo "median of"
	echo "$runs runs of ${secs} s (after 1 s of warm-up) with min..max; the"
	echo "servers take turns within each round. Ratios are of medians."
	echo "Peers: $(ncat --version 2>&1 | head -n1), $(socat -V 2>/dev/null |
		grep -m1 'socat version' | sed 's/ on .*//'),"
	echo "ngIRCd $(/usr/sbin/ngircd --version 2>/dev/null | head -n1 |
		grep -oE '[0-9]+(\.[0-9]+)+' | head -n1) (penalties off:"
	echo "\`MaxPenaltyTime = 0\`, \`MaxConnectionsIP = 0\`)."
	echo
	local s v
	for s in "${scen_order[@]}"; do
		echo "### $s"
		echo
		echo "\`${scen_cmd[$s]}\`"
		echo
		case $s in
		echo-*)
			echo "| server | msgs/s | MiB/s | p50 µs | p99 µs | max µs | errors |"
			echo "| --- | --- | --- | --- | --- | --- | --- |"
			for v in $(servers_of "$s"); do
				echo "| $v | $(stat "$s" "$v" msgs_per_s) |" \
					"$(stat "$s" "$v" mib_per_s) |" \
					"$(stat "$s" "$v" p50_us) |" \
					"$(stat "$s" "$v" p99_us) |" \
					"$(stat "$s" "$v" max_us) |" \
					"$(total "$s" "$v" errors) |"
			done
			echo
			echo "natterd / refecho: msgs/s" \
				"$(ratio "$(median "$s" natterd-echo msgs_per_s)" \
					"$(median "$s" refecho msgs_per_s)")" \
				"(target >= 0.9), p99" \
				"$(ratio "$(median "$s" natterd-echo p99_us)" \
					"$(median "$s" refecho p99_us)")" \
				"(target <= 1.2)."
			base_ratio "$s" echo msgs_per_s
			servers_of "$s" | grep -qx natterd-echo-w1 &&
				echo "With one worker (natterd-echo-w1): msgs/s" \
					"$(ratio "$(median "$s" natterd-echo-w1 msgs_per_s)" \
						"$(median "$s" refecho msgs_per_s)")," \
					"p99" \
					"$(ratio "$(median "$s" natterd-echo-w1 p99_us)" \
						"$(median "$s" refecho p99_us)")."
			;;
		chat-*)
			echo "| server | deliveries/s | p50 µs | p99 µs | max µs | lost | reordered | errors |"
			echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
			for v in $(servers_of "$s"); do
				echo "| $v | $(stat "$s" "$v" deliveries_per_s) |" \
					"$(stat "$s" "$v" p50_us) |" \
					"$(stat "$s" "$v" p99_us) |" \
					"$(stat "$s" "$v" max_us) |" \
					"$(total "$s" "$v" lost) |" \
					"$(total "$s" "$v" reordered) |" \
					"$(total "$s" "$v" errors) |"
			done
			echo
			base_ratio "$s" chat deliveries_per_s
			case $s in
			chat-fanout-*)
				echo "natterd / ncat --chat: deliveries/s" \
					"$(ratio "$(median "$s" natterd-chat deliveries_per_s)" \
						"$(median "$s" ncat-chat deliveries_per_s)")" \
					"(target >= 1); natterd / ngircd:" \
					"$(ratio "$(median "$s" natterd-chat deliveries_per_s)" \
						"$(median "$s" ngircd deliveries_per_s)")" \
					"(target >= 2); lost and reordered are summed over all runs (target 0)."
				;;
			chat-latency-*)
				echo "natterd p99 fan-out latency:" \
					"$(median "$s" natterd-chat p99_us) µs (target < 2000)."
				;;
			esac
			;;
		churn-*)
			echo "| server | connections/s | connect p50 µs | p99 µs | max µs | errors |"
			echo "| --- | --- | --- | --- | --- | --- |"
			for v in $(servers_of "$s"); do
				echo "| $v | $(stat "$s" "$v" conns_per_s) |" \
					"$(stat "$s" "$v" p50_us) |" \
					"$(stat "$s" "$v" p99_us) |" \
					"$(stat "$s" "$v" max_us) |" \
					"$(total "$s" "$v" errors) |"
			done
			echo
			echo "natterd / refecho: connections/s" \
				"$(ratio "$(median "$s" natterd-echo conns_per_s)" \
					"$(median "$s" refecho conns_per_s)")" \
				"(target >= 0.9)."
			;;
		hold)
			echo "| server | target | held | held after 2 s | refused | failed | RSS before kB | RSS held kB | RSS per connection, bytes |"
			echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
			for v in $(servers_of "$s"); do
				echo "| $v | $(stat "$s" "$v" target) |" \
					"$(stat "$s" "$v" held) |" \
					"$(stat "$s" "$v" held_end) |" \
					"$(stat "$s" "$v" refused) |" \
					"$(stat "$s" "$v" failed) |" \
					"$(stat "$s" "$v" rss_before_kb) |" \
					"$(stat "$s" "$v" rss_after_kb) |" \
					"$(stat "$s" "$v" rss_per_conn_bytes) |"
			done
			echo
			echo "The target is what natterd says it can serve under the"
			echo "hard fd limit of $(ulimit -Hn) (its log: \`accept at most N"
			echo "connections\`); RSS per connection target <= 256 bytes."
			;;
		esac
		echo
	done
	if grep -q '^allocs ' "$counts"; then
		echo "### allocations per broadcast"
		echo
		echo "natterd under \`valgrind --tool=memcheck\`, \`natter-bench chat"
		echo "-c ROOM -k $VG_SENDERS --window 16 --messages M\`: the heap"
		echo "summary's allocations with M = $VG_M1 less those with M = $VG_M0,"
		echo "divided by the $((VG_SENDERS * (VG_M1 - VG_M0))) broadcasts between"
		echo "them. Target: the same for every room size."
		echo
		echo "| room | allocs, M = $VG_M0 | allocs, M = $VG_M1 | allocs per broadcast |"
		echo "| --- | --- | --- | --- |"
		awk -v k="$VG_SENDERS" "$kv_awk"'$1 == "allocs" {
			kv()
			b = k * (f["m1"] - f["m0"])
			printf "| %s | %s | %s | %.2f |\n", f["room"], f["allocs0"],
				f["allocs1"], b ? (f["allocs1"] - f["allocs0"]) / b : 0
		}' "$counts"
		echo
	fi
	if grep -q '^callgrind ' "$counts"; then
		echo "### instructions per echoed message"
		echo
		echo "\`valgrind --tool=callgrind --instr-atstart=no\`, counting"
		echo "(\`callgrind_control -i on/off\`) only while"
		echo "\`natter-bench echo -p PORT ${CG_ARGS[*]}\` runs; instructions"
		echo "in the server process (user space: system calls are not counted)"
		echo "divided by every message echoed. A regression shows here first."
		echo
		echo "| server | messages | instructions | per message |"
		echo "| --- | --- | --- | --- |"
		awk "$kv_awk"'$1 == "callgrind" {
			kv()
			name = f["server"] == "echo" ? "natterd-echo" : f["server"]
			printf "| %s | %s | %s | %.0f |\n", name, f["msgs"], f["ir"],
				f["msgs"] ? f["ir"] / f["msgs"] : 0
		}' "$counts"
		echo
	fi
	if grep -q '^sched ' "$counts"; then
		echo "### waiting for a core"
		echo
		echo "One run per server of \`natter-bench ${SCHED_ECHO[*]}\` and of"
		echo "\`natter-bench ${SCHED_CHURN[*]}\`; from"
		echo "/proc/PID/task/*/schedstat, summed over each process's threads:"
		echo "time on a core and time runnable but waiting for one, for the"
		echo "server and for"
		echo "natter-bench (its figures end half a second before its window"
		echo "does). µs per unit is the server's time on a core per message"
		echo "(echo) or per connection (churn), warm-up included."
		echo
		echo "| scenario | server | rate /s | p99 µs | server on a core, s | server waiting, s | natter-bench on a core, s | natter-bench waiting, s | server µs per unit |"
		echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
		awk "$kv_awk"'$1 == "sched" {
			kv()
			printf "| %s | %s | %s | %s | %.2f | %.2f | %.2f | %.2f | %.1f |\n",
				f["name"], f["server"], f["rate"], f["p99"],
				f["srv_run"] / 1e9, f["srv_wait"] / 1e9,
				f["nb_run"] / 1e9, f["nb_wait"] / 1e9,
				f["count"] ? f["srv_run"] / 1e3 / f["count"] : 0
		}' "$counts"
		echo
	fi
	echo "<!-- bench:end -->"
}

report >"$work/report.md"
if [ "$out" = - ]; then
	cat "$work/report.md"
else
	# replace what an earlier run wrote, keep everything else
	awk -v rep="$work/report.md" '
	/^<!-- bench:start/ { skip = 1; while ((getline l < rep) > 0) print l; done = 1; next }
	/^<!-- bench:end/ { skip = 0; next }
	!skip { print }
	END { if (!done) { print ""; while ((getline l < rep) > 0) print l } }
	' "$out" >"$work/out.md"
	cp "$work/out.md" "$out"
	cat "$work/report.md"
	echo "bench: results written to $out" >&2
fi
