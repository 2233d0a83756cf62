/*
 * The one chat client of the end-to-end suites, on top of nt_test.h.
 *
 * Two ways to hold a connection:
 *  - a bare fd, with helpers that read one line at a time and never past
 *    it (nt_read_line), so the fd can be handed on to other code with
 *    nothing lost: nt_chat_enter(), nt_chat_wait_line(), nt_chat_alive();
 *  - a struct nt_chat that reads into its own buffer, so that many clients
 *    can be served by one poll() and every line checked exactly in order:
 *    nt_chat_open(), nt_chat_expect_line() and the NT_EXPECT* macros.
 *
 * Server lines are classified by libnatter's own natter_parse_line(), the
 * parser programs use; nt_chat_protocol_line() adds what the suites ask of
 * every line natterd sends.
 */
#ifndef NT_CHAT_H
#define NT_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct nt_daemon;

#define NT_CHAT_IO_MS     10000 /* one line; generous for sanitized daemons */
#define NT_CHAT_LINE_SIZE 2048
#define NT_CHAT_BUF_MAX   (8 * 1024 * 1024) /* unread bytes, at most */

/*
 * A line natterd may send (natter-protocol(7)): a marker that
 * natter_parse_line() recognizes, followed by a space, any nick in it one
 * natterd accepts, and nothing in it that could drive a terminal.
 */
bool nt_chat_protocol_line(const char *s, size_t len);

/* ---- a bare fd ----------------------------------------------------------- */

/* one line, CRLF added; 0 or -errno (nt_write_all) */
int nt_chat_send_fd(int fd, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Read lines until one holds what (at its start if anchored): true; false
 * at EOF, on error or once timeout_ms have passed overall. Reads nothing
 * past that line.
 */
bool nt_chat_wait_line(int fd, const char *what, bool anchored, int timeout_ms);

/*
 * Take a fresh connection through the greeting to "you are now in #lobby",
 * then send "/nick NICK" unless nick is NULL and "/join #ROOM" unless room
 * (without its '#') is NULL or "lobby", and wait for the reply to the last
 * of them: "you are now in #ROOM", or "you are now known as NICK" when
 * there is no /join (so a nick refused on the way into a room, still held
 * by a client that has just gone, is no failure). Nothing after that line
 * is read. Fails the running test if a step does not happen within
 * timeout_ms.
 */
void nt_chat_enter(int fd, const char *nick, const char *room, int timeout_ms);

/* "/join #ROOM" and its "you are now in #ROOM"; fails the test */
void nt_chat_join(int fd, const char *room, int timeout_ms);

/* /ping TOKEN came back as "*** pong TOKEN" within timeout_ms */
bool nt_chat_alive(int fd, const char *token, int timeout_ms);

/* ---- a buffered client --------------------------------------------------- */

struct nt_chat {
	int fd;
	char nick[40]; /* for messages; nt_chat_greeting() sets it */
	char *buf;     /* received; [off, len) not yet taken */
	size_t off, len, cap;
	bool eof;
	int err; /* -errno of a failed read */
};

/* take over fd (connected, non-blocking); nick until the greeting: "fdN" */
void nt_chat_init(struct nt_chat *c, int fd);
/* nt_daemon_connect(d, listener) and nt_chat_init(); fails the test */
void nt_chat_connect(struct nt_chat *c, const struct nt_daemon *d,
                     const char *listener);
/* close the fd and free the buffer; safe to call again */
void nt_chat_close(struct nt_chat *c);

/* read what is there without waiting: bytes read, 0 if none */
size_t nt_chat_read_some(struct nt_chat *c);
/* wait up to ms for something to read (or EOF), then read it */
void nt_chat_wait(struct nt_chat *c, int ms);
/* poll n clients once, up to ms, reading what each has (n <= 256) */
void nt_chat_pump(struct nt_chat *v, size_t n, int ms);
/* take the next whole CRLF line if it is there, as it is, without waiting */
bool nt_chat_take(struct nt_chat *c, char *out, size_t size, size_t *out_len);
/* bytes received and not yet taken */
size_t nt_chat_pending(const struct nt_chat *c);

/*
 * The next CRLF line, without its CRLF, into out (its length to *out_len,
 * which may be NULL): 0, -ETIMEDOUT, or -EPIPE at EOF / error. Fails the
 * test on a line that does not fit, or that holds a NUL, CR or LF.
 */
int nt_chat_line(struct nt_chat *c, char *out, size_t size, size_t *out_len,
                 int timeout_ms);
/* "timed out" / "connection closed", for nt_chat_line()'s errors */
const char *nt_chat_rc_str(int rc);

/* write len bytes as they are / one line with CRLF added; fail the test */
void nt_chat_send_raw(struct nt_chat *c, const void *data, size_t len);
void nt_chat_send(struct nt_chat *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Each of these fails the running test, naming the source line at and the
 * client, unless within NT_CHAT_IO_MS:
 */
/* the next line is exactly this */
void nt_chat_expect_line(int at, struct nt_chat *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* the next line starts with prefix; it goes to got */
void nt_chat_expect_prefix(int at, struct nt_chat *c, const char *prefix,
                           char *got, size_t size);
/* exactly these n bytes come next (telnet replies) */
void nt_chat_expect_bytes(int at, struct nt_chat *c, const void *want,
                          size_t n);
/* nothing more, then EOF (a reset counts as the end too) */
void nt_chat_expect_eof(int at, struct nt_chat *c);
/*
 * Nothing was queued for c before this: a /ping's answer comes right after
 * whatever the server had already sent.
 */
void nt_chat_expect_quiet(int at, struct nt_chat *c);

#define NT_EXPECT(c, ...) nt_chat_expect_line(__LINE__, (c), __VA_ARGS__)
#define NT_EXPECT_PREFIX(c, p, buf)                                            \
	nt_chat_expect_prefix(__LINE__, (c), (p), (buf), sizeof(buf))
#define NT_EXPECT_BYTES(c, s)                                                  \
	nt_chat_expect_bytes(__LINE__, (c), (s), sizeof(s) - 1)
#define NT_EXPECT_EOF(c)   nt_chat_expect_eof(__LINE__, (c))
#define NT_EXPECT_QUIET(c) nt_chat_expect_quiet(__LINE__, (c))
/* a string literal, every byte of it (it may hold a NUL) */
#define NT_SEND_LIT(c, lit) nt_chat_send_raw((c), (lit), sizeof(lit) - 1)

/* "guest" and four digits: the nick natterd gives a new client */
bool nt_chat_is_guest(const char *nick);

/*
 * Read the greeting to its last line, checking each line exactly: the
 * welcome with a guest nick (which becomes c->nick), the MOTD lines
 * (motd: NULL-terminated, as the client sees them, "*** " not included),
 * the limits notice (a positive max_line), the nick hint, the line saying c is in #room. Returns the room's size
 * as announced.
 */
unsigned nt_chat_greeting(struct nt_chat *c, const char *const *motd,
                          const char *room);

#endif
