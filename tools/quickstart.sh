#!/usr/bin/env bash
# natter quick start, for a fresh Debian 12 machine:
#   tools/quickstart.sh run    install what is missing, build, run natterd in
#                              the foreground with conf/natterd.conf
#   tools/quickstart.sh test   install what is missing, build, run the test
#                              suite, then the ASan+UBSan and TSan suites,
#                              then every fuzzer for 60 s (make fuzz-smoke),
#                              then make distcheck
# Builds go to build/, build-asan/ and build-tsan/ beside the sources, and
# the fuzzers' clang build to build/build-fuzz/.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=$(nproc 2>/dev/null || echo 2)

# what building needs, and what the tests drive natterd with
build_pkgs=(gcc make autoconf automake libtool pkg-config
	libconfig-dev libsystemd-dev check)
# clang and its runtimes: libFuzzer for make fuzz-smoke, and a second
# compiler for the format check
test_pkgs=(telnet ncat expect systemd procps clang libclang-rt-14-dev)

install_missing() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "quickstart: installing ${missing[*]}"
	local sudo=
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || {
			echo "quickstart: please install as root: apt-get install ${missing[*]}" >&2
			exit 1
		}
		sudo=sudo
	fi
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}"
}

# build DIR [configure flags...]
build() {
	local dir=$1
	shift
	[ -x "$top/configure" ] || (cd "$top" && autoreconf -fi)
	mkdir -p "$top/$dir"
	cd "$top/$dir"
	if [ ! -f Makefile ] || [ "${*:-}" != "$(cat .quickstart-flags 2>/dev/null)" ]; then
		"$top/configure" --quiet "$@"
		echo "${*:-}" >.quickstart-flags
	fi
	make -j"$jobs" >/dev/null
}

# check DIR: run the suite, show the logs of whatever failed
check() {
	local dir=$1
	cd "$top/$dir"
	if ! make -j"$jobs" check; then
		for f in tests/*.log; do
			grep -q '^FAIL\|^ERROR\|:F:\|:E:' "$f" 2>/dev/null &&
				{ echo "==== $dir/$f"; tail -n 60 "$f"; }
		done
		echo "quickstart: the test suite failed in $dir" >&2
		return 1
	fi
}

case "${1:-}" in
run)
	install_missing "${build_pkgs[@]}"
	build build
	echo "quickstart: natterd on 127.0.0.1: chat port 4000, echo port 4007 (Ctrl-C stops it)"
	exec "$top/build/daemon/natterd" -c "$top/conf/natterd.conf"
	;;
test)
	install_missing "${build_pkgs[@]}" "${test_pkgs[@]}"
	build build
	check build
	echo "quickstart: ASan+UBSan build"
	build build-asan --enable-sanitizers=address,undefined
	check build-asan
	echo "quickstart: TSan build"
	build build-tsan --enable-sanitizers=thread
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" check build-tsan
	echo "quickstart: fuzz smoke: every harness 60 s under ASan+UBSan"
	(cd "$top/build" && make fuzz-smoke)
	echo "quickstart: make distcheck"
	cd "$top/build" && make -j"$jobs" distcheck >/dev/null
	echo "quickstart: all suites passed"
	;;
*)
	echo "usage: $0 run|test" >&2
	exit 2
	;;
esac
