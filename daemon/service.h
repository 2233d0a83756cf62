/*
 * The table of services natterd offers (echo, chat): each one's name as
 * natterd.conf spells it, what it does with a connection, and its optional
 * hooks into the rest of the daemon. The worker, conn.c, sd.c and main.c
 * know the services only through this table.
 */
#ifndef NT_SERVICE_H
#define NT_SERVICE_H

#include <stddef.h>
#include <stdint.h>

struct nt_conn;
struct nt_config;
struct nt_sd_session;
struct nt_worker;

/* a listener's service: the index of its entry in the table */
enum nt_service { NT_SERVICE_ECHO, NT_SERVICE_CHAT, NT_SERVICES };

/* What a service does with a connection; every hook is optional. */
struct nt_service_ops {
	/* the connection is registered; greet, set up state; <0 closes.
	 * restored: its session from before a restart, or NULL */
	int (*open)(struct nt_conn *c, const struct nt_sd_session *restored);
	/* the socket is readable and reading is not paused */
	void (*readable)(struct nt_conn *c);
	/* a flush made progress; the queue may be empty now */
	void (*drained)(struct nt_conn *c);
	/* a send was refused: it would have taken the output queue past its
	 * bound (see nt_conn_send). Without this hook the connection is
	 * closed with "output overflow". */
	void (*overflow)(struct nt_conn *c);
	/* the deadline set with nt_conn_set_timer() has come */
	void (*timer)(struct nt_conn *c);
	/* the idle (or line) timeout has come and the connection is being
	 * closed: queue any last words (they get one best-effort write) */
	void (*idle)(struct nt_conn *c);
	void (*line_timeout)(struct nt_conn *c);
	/* the server shuts down: stop taking input, say goodbye */
	void (*shutdown)(struct nt_conn *c);
	/* the worker moved to a new configuration (c->w->cfg); old is the
	 * previous one, still valid during the call */
	void (*reconfigure)(struct nt_conn *c, const struct nt_config *old);
	/* the connection is being freed: release service state */
	void (*close)(struct nt_conn *c);
};

/* A service; every hook but ops is optional. */
struct nt_service_def {
	const char *name; /* service = "NAME" in natterd.conf */
	const struct nt_service_ops *ops;

	/* State shared by every worker (chat: its registry), made before
	 * the workers start, at *shared; 0 or -errno (logged by the caller).
	 * reload: a new configuration is in force; stop: the workers are
	 * gone. */
	int (*start)(const struct nt_config *cfg, unsigned n_workers,
	             void **shared);
	void (*reload)(void *shared, const struct nt_config *cfg);
	void (*stop)(void *shared);

	/* A worker's own state, in w->svc_state[] (the service makes it
	 * when it first needs it): the worker moved to a new configuration
	 * (w->cfg), or ends. */
	void (*worker_reconfigure)(struct nt_worker *w, void *state);
	void (*worker_free)(void *state);

	/* a few words on its shared state for STATUS= and the log
	 * ("3 rooms"); the length written, as snprintf() */
	int (*status)(void *shared, char *buf, size_t size);

	/*
	 * Its part of a connection's saved session (the fd store), an opaque
	 * blob it alone reads: encode c's session into at most cap bytes
	 * (the length, or <0), and check a blob read back (pure: 0, or
	 * -EINVAL for anything it did not write; a stored record is never
	 * trusted). Without them a connection saves an empty blob.
	 */
	int (*session_encode)(const struct nt_conn *c, uint8_t *blob,
	                      size_t cap);
	int (*session_check)(const uint8_t *blob, size_t len);
};

/* the table's entries, each defined by its service */
extern const struct nt_service_def nt_echo_service;
extern const struct nt_service_def nt_chat_service;

/* the entry of s (s < NT_SERVICES) */
const struct nt_service_def *nt_service_get(enum nt_service s);
/* the service named name, or -1 */
int nt_service_find(const char *name);
/* the name of s, or "unknown" */
const char *nt_service_name(enum nt_service s);
/* every name, quoted, for messages: "\"echo\" or \"chat\"" */
void nt_service_names(char *buf, size_t size);

/* every service's start hook, shared[] indexed by service; on failure
 * those started are stopped again and -errno returned */
int nt_services_start(const struct nt_config *cfg, unsigned n_workers,
                      void *shared[NT_SERVICES]);
void nt_services_reload(void *const shared[NT_SERVICES],
                        const struct nt_config *cfg);
/* NULL entries are fine */
void nt_services_stop(void *shared[NT_SERVICES]);
/* the status words of every service that has some, each preceded by
 * ", " */
void nt_services_status(void *const shared[NT_SERVICES], char *buf,
                        size_t size);

#endif
