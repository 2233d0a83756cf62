/*
 * nt_line_next(): byte 0 picks chunk sizes, byte 1 max_line (0..255), the
 * rest is the stream. Properties: whole and chunked give the same lines and
 * overflows (the chunked run also swaps its line buffer whenever no line is
 * partial, as the chat service does, so a stale buffer would show under
 * ASan); no line exceeds max_line or holds CR or LF; *used is sane; every
 * line end in the input ends exactly one line.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "text.h"

/* a line or an overflow into the log: kind, then the line for NT_LINE_OK */
static void record(struct fuzz_log *log, enum nt_line_result r,
                   const uint8_t *line, size_t len)
{
	uint8_t kind = (uint8_t)r;
	uint32_t n = (uint32_t)len;

	if (r == NT_LINE_NEED_MORE) /* as many as there are pieces */
		return;
	fuzz_log_put(log, &kind, 1);
	if (r != NT_LINE_OK)
		return;
	fuzz_log_put(log, &n, sizeof(n));
	fuzz_log_put(log, line, len);
}

struct run {
	struct nt_line l;
	uint8_t *buf;
	size_t max;
	bool swap; /* give the parser a fresh buffer between lines */
	struct fuzz_log log;
	size_t lines, overflows, line_bytes;
};

static uint8_t *fresh(size_t max)
{
	uint8_t *p = malloc(max ? max : 1);
	if (!p)
		abort();
	return p;
}

static void feed(struct run *r, const uint8_t *in, size_t len)
{
	while (len > 0) {
		const uint8_t *line = NULL;
		size_t used = 0, line_len = 0;

		if (r->swap && !nt_line_partial(&r->l)) {
			free(r->buf);
			r->buf = r->l.buf = fresh(r->max);
		}
		enum nt_line_result res =
		    nt_line_next(&r->l, in, len, &used, &line, &line_len);
		FUZZ_CHECK(used <= len, "used %zu of %zu", used, len);
		if (res == NT_LINE_NEED_MORE) {
			FUZZ_CHECK(used == len, "need more after %zu of %zu",
			           used, len);
			FUZZ_CHECK(r->l.len <= r->max, "holds %zu of max %zu",
			           r->l.len, r->max);
		} else {
			FUZZ_CHECK(used >= 1, "a result from no input");
		}
		if (res == NT_LINE_OK) {
			FUZZ_CHECK(line_len <= r->max,
			           "a line of %zu bytes, max_line %zu",
			           line_len, r->max);
			FUZZ_CHECK(line_len == 0 || line == r->l.buf,
			           "line outside the line buffer");
			FUZZ_CHECK(!memchr(line, '\r', line_len) &&
			               !memchr(line, '\n', line_len),
			           "a line holds its terminator");
			r->lines++;
			r->line_bytes += line_len;
		} else if (res == NT_LINE_TOO_LONG) {
			r->overflows++;
		}
		record(&r->log, res, line, line_len);
		in += used;
		len -= used;
	}
}

/* the line ends in the input as the header defines them, counted simply */
static size_t count_ends(const uint8_t *p, size_t n, size_t *data_bytes)
{
	size_t ends = 0, data = 0;

	for (size_t i = 0; i < n; i++) {
		bool after_cr = i > 0 && p[i - 1] == '\r';
		if (p[i] == '\r' || (p[i] == '\n' && !after_cr))
			ends++;
		else if (!(after_cr && (p[i] == '\n' || p[i] == '\0')))
			data++;
	}
	*data_bytes = data;
	return ends;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_chunker k;
	struct run whole = {0}, chunked = {0};

	if (size < 2)
		return 0;
	fuzz_chunker_init(&k, data[0]);
	size_t max = data[1];
	data += 2;
	size -= 2;

	whole.max = chunked.max = max;
	whole.buf = fresh(max);
	chunked.buf = fresh(max);
	chunked.swap = true;
	nt_line_init(&whole.l, whole.buf, max);
	nt_line_init(&chunked.l, chunked.buf, max);

	feed(&whole, data, size);
	for (size_t off = 0, n; off < size; off += n) {
		n = fuzz_chunk(&k, size - off);
		feed(&chunked, data + off, n);
	}

	FUZZ_CHECK(fuzz_log_same(&whole.log, &chunked.log),
	           "whole: %zu lines, %zu overflows; chunked: %zu, %zu",
	           whole.lines, whole.overflows, chunked.lines,
	           chunked.overflows);
	FUZZ_CHECK(nt_line_partial(&whole.l) == nt_line_partial(&chunked.l),
	           "one run ends inside a line, the other does not");

	/*
	 * Each line end closes one line: reported as a line, or swallowed
	 * because that line was already reported too long. An overflow may
	 * also be pending for a last line that never ends.
	 */
	size_t data_bytes, ends = count_ends(data, size, &data_bytes);
	FUZZ_CHECK(whole.lines <= ends && ends <= whole.lines + whole.overflows,
	           "%zu line ends, %zu lines, %zu overflows", ends, whole.lines,
	           whole.overflows);
	FUZZ_CHECK(whole.overflows <= ends + 1,
	           "%zu overflows for %zu line ends", whole.overflows, ends);
	FUZZ_CHECK(whole.line_bytes <= data_bytes,
	           "%zu bytes in lines out of %zu data bytes", whole.line_bytes,
	           data_bytes);
	FUZZ_CHECK(whole.overflows > 0 ||
	               whole.line_bytes + whole.l.len == data_bytes,
	           "no overflow, yet %zu + %zu bytes of %zu came out",
	           whole.line_bytes, whole.l.len, data_bytes);

	free(whole.buf);
	free(chunked.buf);
	fuzz_log_free(&whole.log);
	fuzz_log_free(&chunked.log);
	return 0;
}
