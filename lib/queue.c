/*
 * The send queue, which is also the outage buffer: user lines bounded in
 * count and bytes with the overflow policy applied at push, plus our own
 * control lines (pings, session restore) kept ahead of user lines and
 * outside the bound. Lines are kept as they go on the wire: with their
 * CRLF and, for a telnet-parsing server, with every 0xFF doubled. The
 * caller holds the client's lock around every call; nothing here does I/O.
 */
#include <stdlib.h>
#include <string.h>

#include "natter-int.h"

void natter__queue_init(struct natter__queue *q, size_t max_lines,
                        size_t max_bytes, int overflow, bool telnet)
{
	memset(q, 0, sizeof(*q));
	q->max_lines = max_lines;
	q->max_bytes = max_bytes;
	q->overflow = overflow;
	q->telnet = telnet;
}

void natter__queue_clear(struct natter__queue *q)
{
	struct natter__qline *l = q->head, *next;

	for (; l; l = next) {
		next = l->next;
		free(l);
	}
	q->head = q->tail = NULL;
	q->off = q->lines = q->bytes = 0;
}

/*
 * A telnet server reads 0xFF as IAC, the start of a command: IAC IP would
 * end the session and IAC SB swallow the lines after it. IAC IAC is the
 * data byte 0xFF (RFC 854).
 */
static size_t wire_len(const struct natter__queue *q, const char *line,
                       size_t len)
{
	size_t n = len + 2;

	for (size_t i = 0; q->telnet && i < len; i++)
		n += (unsigned char)line[i] == 0xff;
	return n;
}

static struct natter__qline *qline_new(const struct natter__queue *q,
                                       const char *line, size_t len, bool ctl)
{
	size_t n = wire_len(q, line, len);
	struct natter__qline *l = malloc(sizeof(*l) + n);

	if (!l)
		return NULL;
	l->next = NULL;
	l->len = n;
	l->ctl = ctl;
	for (size_t i = 0, o = 0; i < len; i++) {
		if (q->telnet && (unsigned char)line[i] == 0xff)
			l->data[o++] = line[i];
		l->data[o++] = line[i];
	}
	memcpy(l->data + n - 2, "\r\n", 2);
	return l;
}

/* head has begun going out: it must not be removed or moved */
static bool begun(const struct natter__queue *q, const struct natter__qline *l)
{
	return l == q->head && q->off > 0;
}

/* Unlink the oldest user line that has not begun; false if none. */
static bool drop_oldest(struct natter__queue *q)
{
	struct natter__qline *prev = NULL, *l = q->head;

	while (l && (l->ctl || begun(q, l))) {
		prev = l;
		l = l->next;
	}
	if (!l)
		return false;
	if (prev)
		prev->next = l->next;
	else
		q->head = l->next;
	if (q->tail == l)
		q->tail = prev;
	q->lines--;
	q->bytes -= l->len;
	q->dropped++;
	free(l);
	return true;
}

static bool fits(const struct natter__queue *q, size_t len)
{
	return q->lines < q->max_lines && q->bytes + len <= q->max_bytes;
}

int natter__queue_push(struct natter__queue *q, const char *line, size_t len)
{
	size_t n = wire_len(q, line, len);

	/* would never fit, whatever we drop or wait for: not a full queue
	 * that a retry could find emptied */
	if (n > q->max_bytes)
		return NATTER_ETOOLONG;
	if (!fits(q, n)) {
		if (q->overflow != NATTER_OVERFLOW_DROP_OLDEST)
			return NATTER_EFULL;
		while (!fits(q, n))
			if (!drop_oldest(q))
				return NATTER_EFULL;
	}
	struct natter__qline *l = qline_new(q, line, len, false);
	if (!l)
		return NATTER_ENOMEM;
	if (q->tail)
		q->tail->next = l;
	else
		q->head = l;
	q->tail = l;
	q->lines++;
	q->bytes += l->len;
	return 0;
}

int natter__queue_push_ctl(struct natter__queue *q, const char *line,
                           size_t len)
{
	struct natter__qline *l = qline_new(q, line, len, true);
	struct natter__qline *prev = NULL, *at = q->head;

	if (!l)
		return NATTER_ENOMEM;
	/* after a line already begun and after earlier ctl lines */
	while (at && (at->ctl || begun(q, at))) {
		prev = at;
		at = at->next;
	}
	l->next = at;
	if (prev)
		prev->next = l;
	else
		q->head = l;
	if (!at)
		q->tail = l;
	return 0;
}

int natter__queue_iov(const struct natter__queue *q, struct iovec *iov,
                      int max_iov, size_t max_lines, bool user)
{
	int n = 0;
	size_t off = q->off;

	for (const struct natter__qline *l = q->head;
	     l && n < max_iov && (size_t)n < max_lines; l = l->next) {
		if (!user && !l->ctl && !begun(q, l))
			break;
		iov[n].iov_base = (char *)l->data + off;
		iov[n].iov_len = l->len - off;
		n++;
		off = 0;
	}
	return n;
}

void natter__queue_consume(struct natter__queue *q, size_t n, size_t *lines,
                           size_t *user)
{
	*lines = *user = 0;
	while (n && q->head) {
		struct natter__qline *l = q->head;
		size_t left = l->len - q->off;
		if (n < left) {
			q->off += n;
			return;
		}
		n -= left;
		q->off = 0;
		q->head = l->next;
		if (!q->head)
			q->tail = NULL;
		(*lines)++;
		if (!l->ctl) {
			(*user)++;
			q->lines--;
			q->bytes -= l->len;
		}
		free(l);
	}
}

void natter__queue_rewind(struct natter__queue *q)
{
	struct natter__qline *prev = NULL, *l = q->head, *next;

	/* a half-written line never ended, so the server never acted on it:
	 * sending it whole on the next connection keeps it exactly-once */
	q->off = 0;
	for (; l; l = next) {
		next = l->next;
		if (!l->ctl) {
			prev = l;
			continue;
		}
		if (prev)
			prev->next = next;
		else
			q->head = next;
		if (q->tail == l)
			q->tail = prev;
		free(l);
	}
}

bool natter__queue_has_ctl(const struct natter__queue *q)
{
	for (const struct natter__qline *l = q->head; l; l = l->next)
		if (l->ctl)
			return true;
	return false;
}
