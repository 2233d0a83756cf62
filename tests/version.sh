#!/bin/sh
# One version: what configure was given (NT_VERSION, AC_INIT) is what
# natterd --version, natter --version, natter.pc and natter.h say, and the
# version each man page names in its title line.
want=${NT_VERSION:?NT_VERSION is not set (run through make check)}
b=${NT_BUILDDIR:-.}
fail=0
check() { # what, got
	if [ "$2" = "$want" ]; then
		echo "ok: $1 says $2"
	else
		echo "FAIL: $1 says '$2', configure says '$want'"; fail=1
	fi
}
check "natterd --version" "$("${NATTERD:-$b/daemon/natterd}" --version | sed -n 's/^natterd //p')"
check "natter --version" "$("${NATTER_CLI:-$b/tools/natter}" --version | sed -n 's/^natter //p')"
check "natter.pc" "$(sed -n 's/^Version: *//p' "$b/lib/natter.pc")"
h="$b/lib/natter-version.h"
check "natter.h NATTER_VERSION" "$(sed -n 's/^#define NATTER_VERSION "\(.*\)"$/\1/p' "$h")"
num() { sed -n "s/^#define NATTER_VERSION_$1 \([0-9]*\)$/\1/p" "$h"; }
check "natter.h MAJOR.MINOR.PATCH" "$(num MAJOR).$(num MINOR).$(num PATCH)"
s=${NT_SRCDIR:-..}
for m in "$s"/man/*.[1-8]; do # .TH NAME S "date" "natter 0.1.0" ...
	v=$(sed -n '1,3s/^\.TH .*"natter \([0-9][^"]*\)".*/\1/p' "$m")
	[ -z "$v" ] || check "$(basename "$m")" "$v"
done
exit $fail
