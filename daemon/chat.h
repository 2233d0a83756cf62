/*
 * The chat service: telnet-friendly rooms, nicknames and private messages.
 */
#ifndef NT_CHAT_H
#define NT_CHAT_H

#include "conn.h"
#include "service.h"

/* its entry in the table of services (service.h): nt_chat_service */

/* ---- a session saved across a restart (the fd store): pure, fuzzed */

struct nt_chat_saved {
	char nick[NT_NICK_LIMIT + 1]; /* "" : none */
	char room[NT_ROOM_MAX + 1];   /* "" : the default room */
};

/*
 * The blob is "chat 1\n" then "nick=NICK\n" and "room=ROOM\n" lines; a blob
 * without the version line is what a record from before blobs said (see
 * sd.h). Encode: the length, or -ENOSPC if cap is too small.
 */
int nt_chat_session_encode(const char *nick, const char *room, uint8_t *blob,
                           size_t cap);
/* Decode: 0, or -EINVAL for anything not a valid blob (an unknown version,
 * a cut or malformed line, a nick or room that is not valid); out is
 * untouched then. Unknown keys are a later version's and are skipped. */
int nt_chat_session_decode(const uint8_t *blob, size_t len,
                           struct nt_chat_saved *out);

/* ---- the command parser: pure, for the service, the tests and fuzzing */

enum nt_chat_cmd {
	NT_CHAT_SAY, /* not a command: text for the room */
	NT_CHAT_NICK,
	NT_CHAT_JOIN,
	NT_CHAT_PART,
	NT_CHAT_ROOMS,
	NT_CHAT_WHO,
	NT_CHAT_MSG,
	NT_CHAT_ME,
	NT_CHAT_PING,
	NT_CHAT_HELP,
	NT_CHAT_QUIT,
	NT_CHAT_UNKNOWN, /* name holds what was typed */
};

/*
 * A parsed line. Every pointer points into the line given to the parser.
 * text is everything after the command word (for SAY: the message, with a
 * leading "//" turned into "/"); arg is its first word and rest what
 * follows that word, so "/msg bob hi there" gives arg "bob", rest
 * "hi there".
 */
struct nt_chat_line {
	enum nt_chat_cmd cmd;
	const char *name; /* the command word without '/' */
	size_t name_len;
	const char *text;
	size_t text_len;
	const char *arg;
	size_t arg_len;
	const char *rest;
	size_t rest_len;
};

void nt_chat_parse(const char *line, size_t len, struct nt_chat_line *out);
/* "/nick NAME" etc., for error replies; NULL for SAY and UNKNOWN */
const char *nt_chat_usage(enum nt_chat_cmd cmd);

#endif
