/*
 * nt_telnet_feed(): the first byte picks chunk sizes, the rest is the
 * stream. Properties: fed whole, in chunks and in place, the data, replies,
 * events and final state agree; the data also agrees with a plain
 * byte-at-a-time reading of RFC 854 written here; every reply is a
 * well-formed refusal, each option refused at most once per direction.
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "telnet.h"

/* RFC 854 as the header describes it, one byte at a time, no shortcuts */
struct ref {
	enum { R_DATA, R_IAC, R_VERB, R_SB, R_SB_IAC } st;
	uint32_t sb_len;
	unsigned events;
};

static void ref_command(struct ref *r, uint8_t c)
{
	if (c >= NT_TELNET_WILL && c <= NT_TELNET_DONT) {
		r->st = R_VERB;
	} else if (c == NT_TELNET_SB) {
		r->sb_len = 0;
		r->st = R_SB;
	} else {
		if (c == NT_TELNET_IP)
			r->events |= NT_TELNET_EV_INTERRUPT;
		if (c == NT_TELNET_AYT)
			r->events |= NT_TELNET_EV_AYT;
		r->st = R_DATA;
	}
}

static void ref_sb_byte(struct ref *r)
{
	if (r->sb_len <= NT_TELNET_SB_MAX && ++r->sb_len > NT_TELNET_SB_MAX)
		r->events |= NT_TELNET_EV_SB_TOO_LONG;
}

static size_t ref_feed(struct ref *r, const uint8_t *in, size_t len,
                       uint8_t *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		uint8_t c = in[i];
		switch (r->st) {
		case R_DATA:
			if (c == NT_TELNET_IAC)
				r->st = R_IAC;
			else
				out[n++] = c;
			break;
		case R_IAC:
			if (c == NT_TELNET_IAC) {
				out[n++] = c;
				r->st = R_DATA;
			} else {
				ref_command(r, c);
			}
			break;
		case R_VERB:
			r->st = R_DATA;
			break;
		case R_SB:
			if (c == NT_TELNET_IAC)
				r->st = R_SB_IAC;
			else
				ref_sb_byte(r);
			break;
		case R_SB_IAC:
			if (c == NT_TELNET_SE) {
				r->st = R_DATA;
			} else if (c == NT_TELNET_IAC) {
				r->st = R_SB;
				ref_sb_byte(r);
			} else {
				ref_command(r, c);
			}
			break;
		}
	}
	return n;
}

/* replies are IAC WONT/DONT opt; nothing refused twice but TIMING-MARK */
static void check_replies(const struct nt_telnet_out *o)
{
	bool wont[256] = {0}, dont[256] = {0};
	unsigned tm = 0;

	FUZZ_CHECK(o->len <= sizeof(o->buf), "reply length %zu", o->len);
	FUZZ_CHECK(o->len % 3 == 0, "reply length %zu", o->len);
	for (size_t i = 0; i < o->len; i += 3) {
		uint8_t verb = o->buf[i + 1], opt = o->buf[i + 2];
		FUZZ_CHECK(o->buf[i] == NT_TELNET_IAC, "reply at %zu", i);
		FUZZ_CHECK(verb == NT_TELNET_WONT || verb == NT_TELNET_DONT,
		           "reply verb %u", verb);
		if (verb == NT_TELNET_WONT &&
		    opt == NT_TELNET_OPT_TIMING_MARK) {
			tm++;
			continue;
		}
		bool *seen = verb == NT_TELNET_WONT ? wont : dont;
		FUZZ_CHECK(!seen[opt], "option %u refused twice", opt);
		seen[opt] = true;
	}
	FUZZ_CHECK(tm <= NT_TELNET_TM_MAX && tm == o->tm_replies,
	           "%u timing-mark answers, %u counted", tm, o->tm_replies);
}

static bool same_state(const struct nt_telnet *a, const struct nt_telnet *b)
{
	return a->state == b->state && a->verb == b->verb &&
	       a->sb_len == b->sb_len &&
	       !memcmp(a->refused_will, b->refused_will,
	               sizeof(a->refused_will)) &&
	       !memcmp(a->refused_do, b->refused_do, sizeof(a->refused_do));
}

static bool same_out(const struct nt_telnet_out *a,
                     const struct nt_telnet_out *b)
{
	return a->events == b->events && a->tm_replies == b->tm_replies &&
	       a->len == b->len && !memcmp(a->buf, b->buf, a->len);
}

/* too big for the stack of a fuzzer's thread many times over: static */
static struct nt_telnet_out out_whole, out_chunked, out_inplace;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nt_telnet whole, chunked, inplace;
	struct fuzz_chunker k;
	struct ref ref = {.st = R_DATA};

	if (size < 1)
		return 0;
	fuzz_chunker_init(&k, data[0]);
	data++;
	size--;
	uint8_t *a = malloc(size + 1), *b = malloc(size + 1),
	        *c = malloc(size + 1), *r = malloc(size + 1);
	if (!a || !b || !c || !r)
		abort();

	nt_telnet_init(&whole);
	nt_telnet_out_init(&out_whole);
	size_t na = nt_telnet_feed(&whole, data, size, a, &out_whole);

	nt_telnet_init(&chunked);
	nt_telnet_out_init(&out_chunked);
	size_t nb = 0;
	for (size_t off = 0, n; off < size; off += n) {
		n = fuzz_chunk(&k, size - off);
		nb += nt_telnet_feed(&chunked, data + off, n, b + nb,
		                     &out_chunked);
	}

	/* in place, as the chat service calls it */
	memcpy(c, data, size);
	nt_telnet_init(&inplace);
	nt_telnet_out_init(&out_inplace);
	size_t nc = nt_telnet_feed(&inplace, c, size, c, &out_inplace);

	size_t nr = ref_feed(&ref, data, size, r);

	FUZZ_CHECK(na <= size, "%zu data bytes out of %zu in", na, size);
	FUZZ_CHECK(na == nb && !memcmp(a, b, na),
	           "whole gave %zu data bytes, chunked %zu", na, nb);
	FUZZ_CHECK(na == nc && !memcmp(a, c, na),
	           "whole gave %zu data bytes, in place %zu", na, nc);
	FUZZ_CHECK(na == nr && !memcmp(a, r, na),
	           "%zu data bytes, the RFC 854 reading gives %zu", na, nr);
	FUZZ_CHECK(same_out(&out_whole, &out_chunked),
	           "replies or events differ whole and chunked");
	FUZZ_CHECK(same_out(&out_whole, &out_inplace),
	           "replies or events differ whole and in place");
	FUZZ_CHECK(out_whole.events == ref.events,
	           "events %#x, the RFC 854 reading gives %#x",
	           out_whole.events, ref.events);
	FUZZ_CHECK(same_state(&whole, &chunked) && same_state(&whole, &inplace),
	           "final parser states differ");
	check_replies(&out_whole);

	free(a);
	free(b);
	free(c);
	free(r);
	return 0;
}
