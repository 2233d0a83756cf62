#!/bin/sh
# No format-string use of peer data, anywhere: every C source of natterd
# (and of libnatter and the tools, when they are there) must compile without
# a single warning under -Wformat=2 -Wformat-security -Werror, with each
# compiler at hand (gcc and clang do not see the same things: clang also
# wants a va_list formatter to carry a format attribute). And the check must
# bite: a log call whose format is a variable has to be refused.
#
# The compiling is done by `make format-probe` (tests/fuzz/fuzz.am), so that
# the build's own defines and include paths arrive quoted as make has them;
# from make check, NT_FORMAT_CC is the configured compiler and NT_BUILDDIR
# the build directory.
set -u

top=${NT_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${NT_BUILDDIR:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nt-format-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0

# probe CC FILE...: compile with the format flags, every warning an error
probe() {
	cc=$1
	shift
	${MAKE:-make} -s -C "$build" format-probe FORMAT_CC="$cc" \
		FORMAT_SRC="$*" >"$tmp/out" 2>&1
}

# a file calling the logger with peer's text as $1
probe_file() {
	printf '#include <stddef.h>\n#include "log.h"\n' >"$tmp/probe.c"
	printf 'void nt_format_probe(const char *peer);\n' >>"$tmp/probe.c"
	printf 'void nt_format_probe(const char *peer) { %s; }\n' "$1" \
		>>"$tmp/probe.c"
	echo "$tmp/probe.c"
}

compilers=
for cc in "${NT_FORMAT_CC:-cc}" gcc clang; do
	cc1=${cc%% *}
	command -v "$cc1" >/dev/null 2>&1 || continue
	case " $compilers " in *" $cc1 "*) continue ;; esac
	compilers="$compilers $cc1"
done
[ -n "$compilers" ] || { echo "SKIP: no C compiler"; exit 77; }

sources=$(ls "$top"/daemon/*.c "$top"/lib/*.c "$top"/tools/*.c 2>/dev/null)
for cc in $compilers; do
	n=0 bad=0
	for src in $sources; do
		n=$((n + 1))
		if ! probe "$cc" "$src"; then
			echo "FAIL: $cc: ${src#"$top"/}:"
			cat "$tmp/out"
			bad=$((bad + 1))
			fail=1
		fi
	done
	echo "$cc: $n sources, $bad with a format warning"

	# the check bites: peer data as the format is refused...
	for call in 'nt_log(NT_LOG_INFO, 0, peer)' 'nt_log_notice(peer)' \
		'nt_logc(NT_LOG_INFO, NULL, peer)'; do
		if probe "$cc" "$(probe_file "$call")"; then
			echo "FAIL: $cc accepts '$call': the check would miss it"
			fail=1
		fi
	done
	# ...and as an argument it is fine
	if ! probe "$cc" "$(probe_file 'nt_log_notice("%s", peer)')"; then
		echo "FAIL: $cc refuses a correct call (the probe is broken):"
		cat "$tmp/out"
		fail=1
	fi
done
exit $fail
