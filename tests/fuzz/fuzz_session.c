/*
 * The fd store's session records and the chat service's blob in them: what
 * a restarted natterd reads from a memfd it must not trust. Properties: a
 * refused record or blob leaves the output untouched; an accepted record
 * has a valid listener name and a bounded blob, and encoding it again gives
 * a record that decodes to the same; an accepted chat blob has a valid nick
 * (or none) and a normalized room, and survives its own encoding. The input
 * is read as a record and, whole, as a chat blob.
 */
#include <string.h>

#include "chat.h"
#include "fuzz.h"
#include "sd.h"
#include "text.h"

static void check_chat_blob(const uint8_t *blob, size_t len)
{
	struct nt_chat_saved c, again, keep;
	uint8_t out[NT_SD_BLOB_MAX];

	memset(&c, 0x55, sizeof(c));
	keep = c;
	if (nt_chat_session_decode(blob, len, &c) < 0) {
		FUZZ_CHECK(!memcmp(&c, &keep, sizeof(c)),
		           "a refused blob changed the output");
		return;
	}
	size_t n = strnlen(c.nick, sizeof(c.nick));
	FUZZ_CHECK(n < sizeof(c.nick), "an unterminated nick");
	FUZZ_CHECK(!n || nt_text_nick_valid(c.nick, n, NT_NICK_LIMIT),
	           "an invalid nick \"%s\" accepted", c.nick);
	n = strnlen(c.room, sizeof(c.room));
	FUZZ_CHECK(n < sizeof(c.room), "an unterminated room");
	if (n) {
		char norm[NT_ROOM_MAX + 1];
		FUZZ_CHECK(nt_text_room_normalize(c.room, n, norm) == (int)n &&
		               !strcmp(norm, c.room),
		           "room \"%s\" is not normalized", c.room);
	}
	int k = nt_chat_session_encode(c.nick, c.room, out, sizeof(out));
	FUZZ_CHECK(k > 0, "a decoded session does not encode: %d", k);
	FUZZ_CHECK(nt_chat_session_decode(out, (size_t)k, &again) == 0 &&
	               !strcmp(again.nick, c.nick) &&
	               !strcmp(again.room, c.room),
	           "a session changed through encode and decode");
}

static void check_record(const uint8_t *data, size_t size)
{
	struct nt_sd_session s, again, keep;
	char buf[NT_SD_SESSION_SIZE];

	memset(&s, 0x55, sizeof(s));
	keep = s;
	if (nt_sd_session_decode((const char *)data, size, &s) < 0) {
		FUZZ_CHECK(!memcmp(&s, &keep, sizeof(s)),
		           "a refused record changed the output");
		return;
	}
	size_t n = strnlen(s.listener, sizeof(s.listener));
	FUZZ_CHECK(n > 0 && n <= NT_NAME_MAX, "a listener of %zu bytes", n);
	FUZZ_CHECK(s.blob_len <= NT_SD_BLOB_MAX, "a blob of %u bytes",
	           s.blob_len);
	nt_sd_session_encode(&s, buf);
	FUZZ_CHECK(nt_sd_session_decode(buf, sizeof(buf), &again) == 0,
	           "an encoded record is refused");
	FUZZ_CHECK(!strcmp(again.listener, s.listener) &&
	               again.socket == s.socket &&
	               again.blob_len == s.blob_len &&
	               !memcmp(again.blob, s.blob, s.blob_len),
	           "a record changed through encode and decode");
	check_chat_blob(s.blob, s.blob_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_record(data, size);
	check_chat_blob(data, size);
	return 0;
}
