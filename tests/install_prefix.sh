#!/bin/sh
# `make install` stays inside its prefix. A throwaway configure of this
# source tree with --prefix=P installs its data (units, man pages, headers,
# natter.pc, natterd.conf) under DESTDIR, and every file must land inside
# DESTDIR/P, the systemd units in P/lib/systemd/system. The system's unit
# directory (systemd.pc) is the default only for --prefix=/usr, and
# --with-systemdsystemunitdir wins over both. Programs are not built: their
# directories derive from the prefix alone.
set -u
top=${NT_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nt-prefix-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0

# configure into $tmp/$1 with the rest as options; the checks are cached
conf() {
	dir=$tmp/$1
	shift
	mkdir -p "$dir" && (cd "$dir" &&
		"$top/configure" -q --cache-file="$tmp/config.cache" "$@" \
			>"$tmp/configure.log" 2>&1) || {
		cat "$tmp/configure.log"
		echo "FAIL: configure $*"
		exit 99
	}
}

# the unit directory a configured tree installs to, prefix expanded
unitdir() {
	sed -n 's/^systemdsystemunitdir = //p' "$tmp/$1/Makefile" |
		sed "s|\${prefix}|$2|; s|\$(prefix)|$2|"
}

prefix=$tmp/p
conf own --prefix="$prefix"
make -s -C "$tmp/own" install-data DESTDIR="$tmp/dest" >"$tmp/install.log" 2>&1 || {
	cat "$tmp/install.log"
	echo "FAIL: make install-data"
	exit 1
}
outside=$(cd "$tmp/dest" && find . ! -type d | sed 's|^\.||' |
	grep -v "^$prefix/")
if [ -n "$outside" ]; then
	echo "FAIL: installed outside --prefix=$prefix:"
	echo "$outside"
	fail=1
fi
for u in natterd.service natterd.socket natterd-echo.socket; do
	[ -f "$tmp/dest$prefix/lib/systemd/system/$u" ] || {
		echo "FAIL: no $prefix/lib/systemd/system/$u"
		fail=1
	}
done

# a distribution's package: the system's unit directory
conf usr --prefix=/usr
want=$(pkg-config --define-variable=prefix=/usr \
	--variable=systemdsystemunitdir systemd 2>/dev/null)
[ -n "$want" ] || want=/usr/lib/systemd/system
got=$(unitdir usr /usr)
[ "$got" = "$want" ] || {
	echo "FAIL: --prefix=/usr: units to '$got', not '$want'"
	fail=1
}

# an explicit directory wins
conf with --prefix="$prefix" --with-systemdsystemunitdir=/etc/units-here
got=$(unitdir with "$prefix")
[ "$got" = /etc/units-here ] || {
	echo "FAIL: --with-systemdsystemunitdir: units to '$got'"
	fail=1
}

[ $fail = 0 ] && echo "everything inside $prefix; /usr and --with as asked"
exit $fail
