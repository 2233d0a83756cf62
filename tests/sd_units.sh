#!/bin/sh
# The systemd units as systemd sees them, without a running systemd:
# `systemd-analyze verify` must accept all three, and the service's
# `systemd-analyze security --offline=true` exposure must stay at 1.0 or
# below. Skipped (exit 77) only when systemd-analyze is not installed.
set -u

command -v systemd-analyze >/dev/null 2>&1 || {
	echo "SKIP: systemd-analyze not found (apt-get install systemd)"
	exit 77
}
top=${NT_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${NT_BUILDDIR:-.}
natterd=${NATTERD:-$build/daemon/natterd}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nt-units-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
fail=0

[ -f "$build/systemd/natterd.service" ] || {
	echo "FAIL: $build/systemd/natterd.service was not generated"
	exit 1
}
# verify checks that ExecStart= exists: point it at the natterd just built
# (and nothing else: the rest of the unit is exactly what gets installed)
sed "s|^ExecStart=[^ ]*/natterd |ExecStart=$natterd |" \
	"$build/systemd/natterd.service" >"$tmp/natterd.service"
cp "$top/systemd/natterd.socket" "$top/systemd/natterd-echo.socket" "$tmp/"
grep -q "^ExecStart=$natterd -c /" "$tmp/natterd.service" || {
	echo "FAIL: no 'ExecStart=.../natterd -c /...' in natterd.service"
	fail=1
}

# any output at all is a warning systemd would log at every load
for u in natterd.service natterd.socket natterd-echo.socket; do
	out=$(cd "$tmp" && systemd-analyze verify --man=no "./$u" 2>&1)
	rc=$?
	if [ $rc -ne 0 ] || [ -n "$out" ]; then
		echo "FAIL: systemd-analyze verify $u (exit $rc):"
		echo "$out"
		fail=1
	else
		echo "ok: systemd-analyze verify $u"
	fi
done

# "→ Overall exposure level for natterd.service: 0.9 SAFE 😀"
out=$(cd "$tmp" && systemd-analyze security --offline=true ./natterd.service 2>&1)
score=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for natterd.service: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
	echo "FAIL: no exposure level in the output of systemd-analyze security:"
	printf '%s\n' "$out"
	fail=1
elif awk -v s="$score" 'BEGIN { exit !(s > 1.0) }'; then
	echo "FAIL: exposure level $score is above 1.0; what counts against it:"
	printf '%s\n' "$out" | grep '✗'
	fail=1
else
	echo "ok: systemd-analyze security exposure $score (at most 1.0)"
fi

# the unit must still name the installed files, from configure
grep -q "^ExecStart=.*/natterd -c .*/natter/natterd.conf$" \
	"$build/systemd/natterd.service" || {
	echo "FAIL: natterd.service does not run natterd with natter/natterd.conf"
	fail=1
}
exit $fail
