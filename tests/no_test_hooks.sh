#!/bin/sh
# The natterd that `make install` puts in sbin has none of the test-only
# hooks: they are compiled into natterd-test alone. natterd-test is checked
# too, so that a renamed hook cannot make this test pass by finding nothing.
prog() { # the ELF file behind a program libtool may have wrapped
	if [ -f "$(dirname "$1")/.libs/$(basename "$1")" ]; then
		echo "$(dirname "$1")/.libs/$(basename "$1")"
	else
		echo "$1"
	fi
}
natterd=$(prog "${NATTERD:-daemon/natterd}")
natterd_test=$(prog "${NATTERD_TEST:-daemon/natterd-test}")
for p in "$natterd" "$natterd_test"; do
	[ -f "$p" ] || { echo "no $p"; exit 99; }
done
command -v nm >/dev/null || { echo "no nm"; exit 77; }
# the hooks' entry points (main.c under NT_TEST_HOOKS) and what they read
hooks() {
	{ nm -a "$1" 2>/dev/null; strings -a "$1"; } |
		grep -E 'test_stall|NATTERD_TEST_|NT_TEST_|test hook'
}
found=$(hooks "$natterd")
if [ -n "$found" ]; then
	echo "$natterd has test-only hooks:"; echo "$found" | sort -u; exit 1
fi
if [ -z "$(hooks "$natterd_test")" ]; then
	echo "$natterd_test has no test hook: is this test still looking for the right names?"
	exit 1
fi
echo "natterd has no test hook; natterd-test has them"
