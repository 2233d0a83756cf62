/*
 * The telnet receiver: a byte-at-a-time state machine, so input may be split
 * anywhere. We never enable an option, which keeps the server side of RFC
 * 1143 trivial: refuse each offer once, never answer a refusal.
 */
#include <string.h>

#include "telnet.h"

enum {
	ST_DATA,   /* plain data */
	ST_IAC,    /* saw IAC */
	ST_VERB,   /* saw IAC WILL/WONT/DO/DONT, the option byte is next */
	ST_SB,     /* inside IAC SB ... IAC SE */
	ST_SB_IAC, /* saw IAC inside a subnegotiation */
};

void nt_telnet_init(struct nt_telnet *t)
{
	memset(t, 0, sizeof(*t));
	t->state = ST_DATA;
}

void nt_telnet_out_init(struct nt_telnet_out *out)
{
	out->events = 0;
	out->tm_replies = 0;
	out->len = 0;
}

/* true the first time an option is seen in this bitmap */
static int first_time(uint8_t map[32], uint8_t opt)
{
	uint8_t bit = (uint8_t)(1u << (opt & 7));

	if (map[opt >> 3] & bit)
		return 0;
	map[opt >> 3] |= bit;
	return 1;
}

static void reply(struct nt_telnet_out *out, uint8_t verb, uint8_t opt)
{
	/*
	 * Cannot fail by construction (see NT_TELNET_REPLY_MAX); checked all
	 * the same so that a bug elsewhere drops a reply, not memory.
	 */
	if (out->len + 3 > sizeof(out->buf))
		return;
	out->buf[out->len++] = NT_TELNET_IAC;
	out->buf[out->len++] = verb;
	out->buf[out->len++] = opt;
}

/*
 * IAC <verb> <opt>. WONT and DONT are never answered: we consider every
 * option off already, and answering them is how negotiation loops start.
 */
static void negotiate(struct nt_telnet *t, uint8_t opt,
                      struct nt_telnet_out *out)
{
	switch (t->verb) {
	case NT_TELNET_WILL:
		if (first_time(t->refused_will, opt))
			reply(out, NT_TELNET_DONT, opt);
		break;
	case NT_TELNET_DO:
		/*
		 * A client that sent DO TIMING-MARK discards output until it
		 * sees the answer, so each one gets its own, up to the cap.
		 */
		if (opt == NT_TELNET_OPT_TIMING_MARK) {
			if (out->tm_replies < NT_TELNET_TM_MAX) {
				out->tm_replies++;
				reply(out, NT_TELNET_WONT, opt);
			}
		} else if (first_time(t->refused_do, opt)) {
			reply(out, NT_TELNET_WONT, opt);
		}
		break;
	default:
		break;
	}
}

/* the byte after IAC, outside a subnegotiation; returns the next state */
static uint8_t command(struct nt_telnet *t, uint8_t c,
                       struct nt_telnet_out *out)
{
	switch (c) {
	case NT_TELNET_WILL:
	case NT_TELNET_WONT:
	case NT_TELNET_DO:
	case NT_TELNET_DONT:
		t->verb = c;
		return ST_VERB;
	case NT_TELNET_SB:
		t->sb_len = 0;
		return ST_SB;
	case NT_TELNET_IP:
		out->events |= NT_TELNET_EV_INTERRUPT;
		return ST_DATA;
	case NT_TELNET_AYT:
		out->events |= NT_TELNET_EV_AYT;
		return ST_DATA;
	default:
		/* NOP, DM, BRK, AO, EC, EL, GA, a stray SE, unknown: ignored */
		return ST_DATA;
	}
}

/* count one skipped subnegotiation byte without storing it */
static void sb_skip(struct nt_telnet *t, struct nt_telnet_out *out)
{
	if (t->sb_len > NT_TELNET_SB_MAX)
		return; /* saturated, already reported */
	if (++t->sb_len > NT_TELNET_SB_MAX)
		out->events |= NT_TELNET_EV_SB_TOO_LONG;
}

/* one byte in any state but plain data; returns 1 if it is a data byte */
static int step(struct nt_telnet *t, uint8_t c, struct nt_telnet_out *out)
{
	switch (t->state) {
	case ST_DATA:
		if (c != NT_TELNET_IAC)
			return 1;
		t->state = ST_IAC;
		return 0;
	case ST_IAC:
		if (c == NT_TELNET_IAC) { /* escaped 0xFF */
			t->state = ST_DATA;
			return 1;
		}
		t->state = command(t, c, out);
		return 0;
	case ST_VERB:
		negotiate(t, c, out);
		t->state = ST_DATA;
		return 0;
	case ST_SB:
		if (c == NT_TELNET_IAC)
			t->state = ST_SB_IAC;
		else
			sb_skip(t, out);
		return 0;
	case ST_SB_IAC:
		if (c == NT_TELNET_SE) {
			t->state = ST_DATA;
		} else if (c == NT_TELNET_IAC) {
			t->state = ST_SB;
			sb_skip(t, out);
		} else {
			/*
			 * Any other command ends a broken subnegotiation and
			 * counts as itself (like libtelnet), so IAC IP still
			 * works from inside an SB that never ends.
			 */
			t->state = command(t, c, out);
		}
		return 0;
	default:
		t->state = ST_DATA;
		return 0;
	}
}

size_t nt_telnet_feed(struct nt_telnet *t, const uint8_t *in, size_t len,
                      uint8_t *data, struct nt_telnet_out *out)
{
	size_t i = 0, n = 0;

	while (i < len) {
		/* fast path: copy a run of plain data up to the next IAC */
		if (t->state == ST_DATA) {
			const uint8_t *iac =
			    memchr(in + i, NT_TELNET_IAC, len - i);
			size_t run = iac ? (size_t)(iac - (in + i)) : len - i;

			if (run && data + n != in + i)
				memmove(data + n, in + i, run);
			n += run;
			i += run;
			if (i == len)
				break;
		}
		/* n <= i always holds, so writing data[n] never clobbers
		 * input not yet read when data == in */
		if (step(t, in[i], out))
			data[n++] = in[i];
		i++;
	}
	return n;
}
