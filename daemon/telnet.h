/*
 * A pure RFC 854 receiver: strips telnet commands out of a byte stream,
 * refuses every option the peer offers or asks for, and reports the few
 * commands a chat session cares about. No fd, no lock, no log, no malloc.
 */
#ifndef NT_TELNET_H
#define NT_TELNET_H

#include <stddef.h>
#include <stdint.h>

/* command bytes (RFC 854) and the one option we treat specially (RFC 860) */
enum nt_telnet_cmd {
	NT_TELNET_SE = 240,
	NT_TELNET_NOP = 241,
	NT_TELNET_DM = 242,
	NT_TELNET_BRK = 243,
	NT_TELNET_IP = 244,
	NT_TELNET_AO = 245,
	NT_TELNET_AYT = 246,
	NT_TELNET_EC = 247,
	NT_TELNET_EL = 248,
	NT_TELNET_GA = 249,
	NT_TELNET_SB = 250,
	NT_TELNET_WILL = 251,
	NT_TELNET_WONT = 252,
	NT_TELNET_DO = 253,
	NT_TELNET_DONT = 254,
	NT_TELNET_IAC = 255,
};
#define NT_TELNET_OPT_TIMING_MARK 6

/*
 * Subnegotiation contents are never stored, only counted: past this many
 * bytes between IAC SB and IAC SE, NT_TELNET_EV_SB_TOO_LONG is raised (once
 * per subnegotiation) and the bytes go on being discarded until IAC SE or
 * another IAC command. The caller decides whether that is worth a close.
 */
#define NT_TELNET_SB_MAX 1024

/*
 * IAC DO TIMING-MARK is answered every time, but at most this many times
 * per struct nt_telnet_out (between two nt_telnet_out_init() calls); more
 * are dropped. One answer is all a client waits for.
 */
#define NT_TELNET_TM_MAX 8

/*
 * Every other refusal is sent at most once per option and direction for the
 * life of the session, so this is the most reply bytes that can ever pile up
 * in one struct nt_telnet_out: it cannot overflow, however it is fed.
 */
#define NT_TELNET_REPLY_MAX (2 * 256 * 3 + NT_TELNET_TM_MAX * 3)

/* events, OR-ed into nt_telnet_out.events */
#define NT_TELNET_EV_INTERRUPT   0x1u /* IAC IP: the user pressed Ctrl-C */
#define NT_TELNET_EV_AYT         0x2u /* IAC AYT: send a short visible answer */
#define NT_TELNET_EV_SB_TOO_LONG 0x4u /* a subnegotiation passed SB_MAX */

/* per-connection parser state: 72 bytes, nothing else is ever held */
struct nt_telnet {
	uint8_t state;
	uint8_t verb;             /* WILL/WONT/DO/DONT awaiting its option */
	uint32_t sb_len;          /* bytes skipped in this SB, saturating */
	uint8_t refused_will[32]; /* bitmap: options we have sent DONT for */
	uint8_t refused_do[32];   /* bitmap: options we have sent WONT for */
};

/*
 * What feeding produced besides data: reply bytes to queue to the peer, in
 * order, and events. Feeding appends; the caller sends buf[0..len), acts on
 * events, then calls nt_telnet_out_init() before the next round. Meant to
 * live on the worker's stack.
 */
struct nt_telnet_out {
	unsigned events;
	unsigned tm_replies; /* timing-mark answers in buf */
	size_t len;
	uint8_t buf[NT_TELNET_REPLY_MAX];
};

void nt_telnet_init(struct nt_telnet *t);
void nt_telnet_out_init(struct nt_telnet_out *out);

/*
 * Feed len bytes of input. Data bytes (everything that is not a telnet
 * command; IAC IAC gives one 0xFF) are written to data, whose length is
 * returned; it is never more than len and data may be the same buffer as
 * in. CR, LF and NUL are data: line framing is the caller's business.
 * Commands may be split anywhere across calls: feeding a stream whole or in
 * pieces gives the same data, replies and events (as long as the same out
 * collects them, or the timing-mark cap is not reached).
 */
size_t nt_telnet_feed(struct nt_telnet *t, const uint8_t *in, size_t len,
                      uint8_t *data, struct nt_telnet_out *out);

#endif
