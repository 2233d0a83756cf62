#!/bin/sh
# libnatter.so exports the public natter_* names and nothing else: no
# natter__ internal, no helper without the prefix.
so=lib/.libs/libnatter.so
[ -f "$so" ] || { echo "no $so (shared libraries disabled?)"; exit 77; }
nm -D --defined-only "$so" >exports.tmp || exit 99
bad=$(awk '$2 ~ /^[TDBRVW]$/ && $3 !~ /^natter_[a-z]/ { print $3 }' exports.tmp)
n=$(awk '$2 ~ /^[TDBRVW]$/ && $3 ~ /^natter_[a-z]/' exports.tmp | wc -l)
rm -f exports.tmp
if [ -n "$bad" ]; then
	echo "exported but not public:"; echo "$bad"; exit 1
fi
# the header's functions must all be there
for f in natter_client_new natter_client_free natter_client_send \
	natter_client_process natter_parse_line natter_strerror \
	natter_options_init_size natter_options_error \
	natter_client_run_for natter_client_flush_server \
	natter_client_current_nick; do
	nm -D --defined-only "$so" | grep -q " $f\$" || { echo "missing $f"; exit 1; }
done
# natter_options_init() is inline in natter.h, so that the size it records
# is the caller's: a library copy would record the library's
if nm -D --defined-only "$so" | grep -q " natter_options_init\$"; then
	echo "natter_options_init exported: it must be inline"; exit 1
fi
# the soname is the first versioned interface (lib/lib.am)
soname=$(objdump -p "$so" | awk '$1 == "SONAME" { print $2 }')
[ "$soname" = libnatter.so.1 ] || { echo "soname $soname, not libnatter.so.1"; exit 1; }
echo "$n public symbols exported, nothing else"
