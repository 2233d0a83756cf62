/*
 * libnatter's line reader (natter__reader_next()): byte 0 picks chunk
 * sizes, byte 1 max_line (0..255), the rest is what a server sends.
 * Properties: whole and chunked give the same lines and the same truncated
 * flags; no line is longer than max_line or holds CR or LF; a line is
 * flagged truncated exactly when it is max_line long and more was cut;
 * every line end in the input ends exactly one line.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "natter-int.h"

struct run {
	struct natter__reader r;
	char *buf;
	size_t max;
	struct fuzz_log log;
	size_t lines;
};

static void feed(struct run *x, const char *in, size_t len)
{
	while (len > 0) {
		const char *line = NULL;
		size_t used = 0, line_len = 0;
		bool cut = false;
		int got = natter__reader_next(&x->r, in, len, &used, &line,
		                              &line_len, &cut);
		FUZZ_CHECK(used <= len && (got ? used >= 1 : used == len),
		           "used %zu of %zu (%d)", used, len, got);
		if (got) {
			FUZZ_CHECK(line_len <= x->max, "a line of %zu, max %zu",
			           line_len, x->max);
			FUZZ_CHECK(!cut || line_len == x->max,
			           "cut at %zu of max %zu", line_len, x->max);
			FUZZ_CHECK(!memchr(line, '\r', line_len) &&
			               !memchr(line, '\n', line_len),
			           "a line holds its terminator");
			uint32_t n = (uint32_t)line_len;
			uint8_t flag = cut;
			fuzz_log_put(&x->log, &n, sizeof(n));
			fuzz_log_put(&x->log, &flag, 1);
			fuzz_log_put(&x->log, line, line_len);
			x->lines++;
		}
		in += used;
		len -= used;
	}
}

static size_t count_ends(const uint8_t *p, size_t n)
{
	size_t ends = 0;

	for (size_t i = 0; i < n; i++) {
		bool after_cr = i > 0 && p[i - 1] == '\r';
		if (p[i] == '\r' || (p[i] == '\n' && !after_cr))
			ends++;
	}
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
	const char *in = (const char *)data + 2;
	size -= 2;

	whole.max = chunked.max = max;
	whole.buf = malloc(max ? max : 1);
	chunked.buf = malloc(max ? max : 1);
	if (!whole.buf || !chunked.buf)
		abort();
	natter__reader_init(&whole.r, whole.buf, max);
	natter__reader_init(&chunked.r, chunked.buf, max);
	feed(&whole, in, size);
	for (size_t off = 0, n; off < size; off += n) {
		n = fuzz_chunk(&k, size - off);
		feed(&chunked, in + off, n);
	}
	FUZZ_CHECK(fuzz_log_same(&whole.log, &chunked.log),
	           "whole: %zu lines; chunked: %zu", whole.lines,
	           chunked.lines);
	size_t ends = count_ends(data + 2, size);
	FUZZ_CHECK(whole.lines == ends, "%zu line ends gave %zu lines", ends,
	           whole.lines);
	free(whole.buf);
	free(chunked.buf);
	fuzz_log_free(&whole.log);
	fuzz_log_free(&chunked.log);
	return 0;
}
