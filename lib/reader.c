/*
 * Line framing for what the server sends: pure, no I/O, so that feeding
 * input in one piece or byte by byte gives the same lines. natterd always
 * ends lines with CRLF; LF, a lone CR and CR NUL are accepted as well.
 */
#include "natter-int.h"

void natter__reader_init(struct natter__reader *r, char *buf, size_t max)
{
	r->buf = buf;
	r->max = max;
	natter__reader_reset(r);
}

void natter__reader_reset(struct natter__reader *r)
{
	r->len = 0;
	r->after_cr = false;
	r->cut = false;
}

int natter__reader_next(struct natter__reader *r, const char *in, size_t len,
                        size_t *used, const char **line, size_t *line_len,
                        bool *truncated)
{
	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		/* the LF (or NUL) of a CR LF may come a read later */
		if (r->after_cr) {
			r->after_cr = false;
			if (c == '\n' || c == '\0')
				continue;
		}
		if (c == '\r' || c == '\n') {
			r->after_cr = c == '\r';
			*used = i + 1;
			*line = r->buf;
			*line_len = r->len;
			*truncated = r->cut;
			r->len = 0; /* buf stays intact until the next call */
			r->cut = false;
			return 1;
		}
		if (r->len < r->max)
			r->buf[r->len++] = c;
		else
			r->cut = true;
	}
	*used = len;
	return 0;
}
