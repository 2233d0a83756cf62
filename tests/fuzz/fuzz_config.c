/*
 * nt_config_load_string(), the config loader from memory. Properties: it
 * either accepts (0, a config, no diagnostics) or refuses (a negative errno
 * and at least one diagnostic); every diagnostic names a file and has a line
 * number within that file, except the few that are about a file as a whole
 * (see below); messages hold no control characters; loading is
 * deterministic; an accepted config keeps every documented range, its MOTD
 * is clean text line by line and its max_output holds the longest chat line
 * and the greeting.
 *
 * "With a line number" means line >= 1 and, for the text itself, no later
 * than its last line. Line 0 ("FILE: message", natterd.conf(5)) is kept for
 * what no line can show: a required top-level setting that is missing, a
 * file that cannot be read at all, and the "N more errors not shown" tail.
 * A missing @include file is not one of those: the error is reported at
 * the line of the @include.
 *
 * @include is fuzzed too, but only with names that have no '/': run from
 * tests/fuzz/include (the smoke script and the replay driver do that), they
 * find the few files there or nothing, never the rest of the file system.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "text.h"

#define NAME "fuzz.conf"

static bool escapes_sandbox(const char *text)
{
	return strstr(text, "@include") && strchr(text, '/');
}

static int count_lines(const char *text)
{
	int n = 1;

	for (; *text; text++)
		n += *text == '\n';
	return n;
}

static bool whole_file_message(const char *msg)
{
	size_t n = strlen(msg);
	static const char more[] = " more errors not shown";

	return !strcmp(msg, "missing 'listeners'") ||
	       !strncmp(msg, "cannot read: ", 13) ||
	       (n > sizeof(more) - 1 &&
	        !strcmp(msg + n - (sizeof(more) - 1), more));
}

static void check_errors(const struct nt_config_diag *d, int lines)
{
	FUZZ_CHECK(d->n >= 1 && d->n <= 101, "%zu diagnostics", d->n);
	for (size_t i = 0; i < d->n; i++) {
		const struct nt_config_error *e = &d->v[i];
		FUZZ_CHECK(e->file && e->file[0] && e->msg && e->msg[0],
		           "diagnostic %zu is empty", i);
		for (const char *p = e->msg; *p; p++)
			FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f,
			           "control byte %#x in \"%s\"",
			           (unsigned char)*p, e->msg);
		if (e->line == 0) {
			FUZZ_CHECK(whole_file_message(e->msg),
			           "no line number: %s: %s", e->file, e->msg);
			continue;
		}
		FUZZ_CHECK(e->line >= 1, "line %d: %s", e->line, e->msg);
		if (!strcmp(e->file, NAME))
			FUZZ_CHECK(e->line <= lines,
			           "line %d of a %d-line text: %s", e->line,
			           lines, e->msg);
	}
}

static bool name_ok(const char *s, size_t max, const char *set)
{
	size_t n = strlen(s);
	return n >= 1 && n <= max && strspn(s, set) == n;
}

static void check_config(const struct nt_config *c)
{
	char room[NT_TEXT_ROOM_MAX + 1];

	FUZZ_CHECK(c->n_listeners >= 1 && c->n_listeners <= 256,
	           "%zu listeners", c->n_listeners);
	FUZZ_CHECK(c->workers <= NT_MAX_WORKERS && c->max_connections >= 1 &&
	               c->max_connections <= NT_MAX_CONNS,
	           "workers %u, max_connections %u", c->workers,
	           c->max_connections);
	FUZZ_CHECK(c->limits.max_output >= NT_MIN_MAX_OUTPUT &&
	               c->limits.max_output <= NT_MAX_MAX_OUTPUT &&
	               c->limits.per_ip <= NT_MAX_CONNS,
	           "limits out of range");
	FUZZ_CHECK(c->chat.max_line >= 64 && c->chat.max_line <= 65536 &&
	               c->chat.max_nick >= 1 &&
	               c->chat.max_nick <= NT_NICK_LIMIT &&
	               c->chat.max_rooms >= 1 && c->chat.flood_rate >= 1 &&
	               c->chat.flood_burst >= 1,
	           "chat settings out of range");
	FUZZ_CHECK(strlen(c->chat.motd) <= NT_MOTD_MAX, "motd too long");
	for (const char *p = c->chat.motd;; p++) {
		size_t n = strcspn(p, "\n");
		FUZZ_CHECK(nt_text_is_clean((const uint8_t *)p, n),
		           "the motd line at byte %zu is not clean text",
		           (size_t)(p - c->chat.motd));
		p += n;
		if (!*p)
			break;
	}
	FUZZ_CHECK(c->limits.max_output >=
	               NT_TEXT_SAY_MAX(c->chat.max_line, NT_NICK_LIMIT),
	           "max_output %zu cannot hold a line of max_line %u",
	           c->limits.max_output, c->chat.max_line);
	FUZZ_CHECK(
	    c->limits.max_output >=
	        NT_TEXT_GREETING_MAX(nt_text_motd_lines(c->chat.motd, NULL),
	                             NT_NICK_LIMIT),
	    "max_output %zu cannot hold the greeting", c->limits.max_output);
	FUZZ_CHECK(nt_text_room_normalize(c->chat.default_room,
	                                  strlen(c->chat.default_room),
	                                  room) > 0 &&
	               !strcmp(room, c->chat.default_room),
	           "default room \"%s\"", c->chat.default_room);
	FUZZ_CHECK(c->timeouts.idle <= NT_MAX_TIMEOUT &&
	               c->timeouts.write <= NT_MAX_TIMEOUT &&
	               c->timeouts.line <= NT_MAX_TIMEOUT &&
	               c->timeouts.shutdown_grace <= NT_MAX_TIMEOUT,
	           "timeouts out of range");
	for (size_t i = 0; i < c->n_listeners; i++) {
		const struct nt_listener_conf *l = &c->listeners[i];
		FUZZ_CHECK(name_ok(l->name, NT_NAME_MAX,
		                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                   "abcdefghijklmnopqrstuvwxyz0123456789_.-"),
		           "listener name \"%s\"", l->name);
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(l->name, c->listeners[j].name),
			           "two listeners called %s", l->name);
		FUZZ_CHECK(l->service == NT_SERVICE_ECHO ||
		               l->service == NT_SERVICE_CHAT,
		           "service %d", (int)l->service);
		FUZZ_CHECK(l->backlog >= 1 && l->backlog <= NT_MAX_BACKLOG,
		           "backlog %d", l->backlog);
		FUZZ_CHECK(l->line >= 1, "listener %s defined at line %d",
		           l->name, l->line);
		FUZZ_CHECK(l->timeouts.idle <= NT_MAX_TIMEOUT &&
		               l->timeouts.write <= NT_MAX_TIMEOUT &&
		               l->timeouts.line <= NT_MAX_TIMEOUT,
		           "listener timeouts out of range");
		if (l->family == NT_FAMILY_UNIX)
			FUZZ_CHECK(l->path[0] && l->mode <= 0777,
			           "unix listener %s: path or mode", l->name);
		else
			FUZZ_CHECK(l->address[0] && !l->path[0],
			           "listener %s: no address", l->name);
	}
}

/* "FILE:LINE: msg" lines, to compare two loads */
static void format_all(const struct nt_config_diag *d, struct fuzz_log *out)
{
	char line[1024];

	for (size_t i = 0; i < d->n; i++) {
		int n = nt_config_error_format(&d->v[i], line, sizeof(line));
		FUZZ_CHECK(n > 0, "a diagnostic formats to nothing");
		fuzz_log_put(out, line, strlen(line));
		fuzz_log_put(out, "\n", 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nt_config *cfg = NULL, *cfg2 = NULL;
	struct nt_config_diag diag = {0}, diag2 = {0};
	struct fuzz_log f1 = {0}, f2 = {0};

	/* libconfig reads up to a NUL, as the loader of a string does */
	char *text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if (escapes_sandbox(text)) {
		free(text);
		return 0;
	}

	int rc = nt_config_load_string(text, NAME, &cfg, &diag);
	if (rc == 0) {
		FUZZ_CHECK(cfg && diag.n == 0, "accepted with %zu diagnostics",
		           diag.n);
		check_config(cfg);
	} else {
		FUZZ_CHECK(!cfg, "refused (%d) but a config came back", rc);
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM || rc == -EFBIG,
		           "refused with %d", rc);
		check_errors(&diag, count_lines(text));
	}

	/* the same text, the same verdict, word for word */
	int rc2 = nt_config_load_string(text, NAME, &cfg2, &diag2);
	format_all(&diag, &f1);
	format_all(&diag2, &f2);
	FUZZ_CHECK(rc == rc2 && fuzz_log_same(&f1, &f2),
	           "two loads of the same text disagree (%d, %d)", rc, rc2);

	nt_config_unref(cfg);
	nt_config_unref(cfg2);
	nt_config_diag_clear(&diag);
	nt_config_diag_clear(&diag2);
	fuzz_log_free(&f1);
	fuzz_log_free(&f2);
	free(text);
	return 0;
}
