/*
 * The daemon's configuration as plain, immutable data. config.c is the only
 * file that sees libconfig; everything else reads a struct nt_config.
 * A loaded config is reference counted so that a reload can swap it while
 * threads still hold the old one.
 */
#ifndef NT_CONFIG_H
#define NT_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "log.h"
#include "service.h"

#define NT_NAME_MAX       63  /* listener name length */
#define NT_ADDR_MAX       63  /* numeric address text */
#define NT_PATH_MAX       107 /* sun_path less the NUL */
#define NT_ROOM_MAX       32  /* room name length */
#define NT_NICK_LIMIT     32  /* largest allowed chat.max_nick */
#define NT_MOTD_MAX       4096
#define NT_MAX_WORKERS    256
#define NT_LISTENERS_MAX  256 /* entries in 'listeners' */
#define NT_MAX_BACKLOG    65535
#define NT_MAX_CONNS      1000000
#define NT_MAX_TIMEOUT    (7 * 24 * 3600) /* seconds */
#define NT_MIN_MAX_OUTPUT 4096
#define NT_MAX_MAX_OUTPUT (1024 * 1024 * 1024)

enum nt_family {
	NT_FAMILY_IPV4,
	NT_FAMILY_IPV6,
	NT_FAMILY_ANY, /* dual-stack: one IPv6 socket with v6only off */
	NT_FAMILY_UNIX,
};

/* seconds; 0 means "no timeout" */
struct nt_timeouts {
	unsigned idle;
	unsigned write;
	unsigned line; /* a started chat line must end within this */
	unsigned shutdown_grace;
};

struct nt_listener_conf {
	char name[NT_NAME_MAX + 1];
	enum nt_service service;
	enum nt_family family;
	char address[NT_ADDR_MAX + 1]; /* numeric; empty for unix */
	uint16_t port;
	char path[NT_PATH_MAX + 1]; /* unix only */
	mode_t mode;                /* unix only */
	int backlog;
	bool reuseaddr;
	bool reuseport;
	bool v6only;
	struct nt_timeouts timeouts; /* global ones with overrides applied */
	int line;                    /* where it was defined, for messages */
};

struct nt_chat_conf {
	char motd[NT_MOTD_MAX + 1]; /* may hold several lines ('\n') */
	char default_room[NT_ROOM_MAX + 1];
	unsigned max_line;    /* bytes per input line */
	unsigned max_nick;    /* characters per nickname */
	unsigned max_rooms;   /* rooms that may exist at once */
	unsigned flood_rate;  /* lines per second refilled */
	unsigned flood_burst; /* bucket size */
};

struct nt_config {
	atomic_int refs;
	char *file;       /* as given, for messages */
	unsigned workers; /* 0 = one per CPU, resolved by the daemon */
	unsigned max_connections;
	enum nt_log_level log_level;
	char user[64];   /* drop privileges to this user; empty: don't */
	bool core_dumps; /* leave core files possible (they hold chat text) */
	struct {
		unsigned per_ip;         /* 0 = unlimited */
		unsigned per_ip_prefix6; /* IPv6: per_ip counts per prefix */
		size_t max_output;       /* bytes queued per client */
	} limits;
	struct nt_timeouts timeouts;
	struct nt_chat_conf chat;
	size_t n_listeners;
	struct nt_listener_conf *listeners;
};

/* one problem found in a file; line is 0 when no line applies */
struct nt_config_error {
	char *file;
	int line;
	char *msg;
};

struct nt_config_diag {
	struct nt_config_error *v;
	size_t n;
};

/*
 * Load and validate. On success *out holds a config with one reference and
 * 0 is returned. On failure every problem found is appended to diag, *out
 * is untouched and -EINVAL (or -ENOENT etc. for an unreadable file, -ENOMEM)
 * is returned. load_string is for tests and fuzzing: name stands in for the
 * file name in messages.
 */
int nt_config_load_file(const char *path, struct nt_config **out,
                        struct nt_config_diag *diag);
int nt_config_load_string(const char *text, const char *name,
                          struct nt_config **out, struct nt_config_diag *diag);

struct nt_config *nt_config_ref(struct nt_config *cfg);
void nt_config_unref(struct nt_config *cfg);

/* "FILE:LINE: message" (or "FILE: message" when line is 0) into buf */
int nt_config_error_format(const struct nt_config_error *e, char *buf,
                           size_t size);
void nt_config_diag_clear(struct nt_config_diag *diag);

const struct nt_listener_conf *nt_config_listener(const struct nt_config *cfg,
                                                  const char *name);
const char *nt_family_name(enum nt_family f);

#endif
