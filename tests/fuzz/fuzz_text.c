/*
 * Text cleaning and the name rules. The input is one line of untrusted
 * bytes. Properties: nt_text_clean() output passes nt_text_is_clean() (valid
 * UTF-8, no byte below 0x20 so no ESC, no DEL, C1 or bidi control) and
 * stays within NT_TEXT_CLEAN_MAX; cleaning is idempotent and the identity on
 * text that is already clean; with less room, the output is a prefix of the
 * full one cut at a character boundary (the stateless cleaner's form of
 * "whole equals chunked"; the first byte picks the room). Nick and room
 * names: valid ones are ASCII, fold to a key that compares equal, and a
 * normalized room normalizes to itself.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "text.h"

static size_t clean(const uint8_t *in, size_t len, uint8_t **out, size_t cap)
{
	*out = malloc(cap ? cap : 1);
	if (!*out)
		abort();
	size_t n = nt_text_clean(in, len, *out, cap);
	FUZZ_CHECK(n <= cap, "%zu bytes out, room for %zu", n, cap);
	return n;
}

static void check_clean(const uint8_t *data, size_t size)
{
	uint8_t *out, *again, *cut;
	size_t cap = NT_TEXT_CLEAN_MAX(size);
	size_t n = clean(data, size, &out, cap);

	FUZZ_CHECK(nt_text_is_clean(out, n), "cleaned text is not clean");
	FUZZ_CHECK(!memchr(out, 0x1b, n), "ESC in cleaned text");

	size_t m = clean(out, n, &again, NT_TEXT_CLEAN_MAX(n));
	FUZZ_CHECK(m == n && !memcmp(out, again, n),
	           "cleaning twice changed %zu bytes into %zu", n, m);

	if (nt_text_is_clean(data, size))
		FUZZ_CHECK(n == size && !memcmp(out, data, size),
		           "clean input of %zu bytes came out as %zu", size, n);

	/* less room: a prefix, cut between characters */
	size_t small = size ? (size_t)data[0] % (cap + 1) : 0;
	size_t k = clean(data, size, &cut, small);
	FUZZ_CHECK(k <= n && !memcmp(cut, out, k),
	           "with room for %zu, not a prefix of the full output", small);
	FUZZ_CHECK(nt_text_is_clean(cut, k), "a cut output is not clean");
	if (k < n)
		FUZZ_CHECK(small - k < 4 && (out[k] & 0xC0) != 0x80,
		           "cut at %zu of %zu with room for %zu", k, n, small);
	free(out);
	free(again);
	free(cut);
}

static bool ascii_name(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static void check_names(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	size_t n = size < 64 ? size : 64;
	char key[65], room[NT_TEXT_ROOM_MAX + 1], again[NT_TEXT_ROOM_MAX + 1];

	if (nt_text_nick_valid(s, n, 32)) {
		FUZZ_CHECK(n >= 1 && n <= 32 && ascii_name(s, n),
		           "a valid nick of %zu bytes", n);
		nt_text_nick_fold(s, n, key);
		char nick[65];
		memcpy(nick, s, n);
		nick[n] = '\0';
		FUZZ_CHECK(nt_text_nick_cmp(nick, key) == 0 &&
		               nt_text_nick_cmp(key, nick) == 0,
		           "a nick and its key compare unequal");
		FUZZ_CHECK(nt_text_nick_valid(key, n, 32),
		           "a valid nick's key is invalid");
	}
	memset(room, 0x55, sizeof(room));
	int r = nt_text_room_normalize(s, n, room);
	if (r < 0) {
		FUZZ_CHECK(r == -22, "room_normalize returned %d", r);
		return;
	}
	FUZZ_CHECK(r >= 1 && r <= NT_TEXT_ROOM_MAX && room[r] == '\0' &&
	               strlen(room) == (size_t)r && ascii_name(room, (size_t)r),
	           "a normalized room of %d bytes", r);
	int r2 = nt_text_room_normalize(room, (size_t)r, again);
	FUZZ_CHECK(r2 == r && !strcmp(room, again),
	           "a normalized room changes when normalized again");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_clean(data, size);
	check_names(data, size);
	return 0;
}
