/*
 * Small stateless helpers shared by the daemon's files: address formatting,
 * monotonic time, fd flags.
 */
#ifndef NT_UTIL_H
#define NT_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define NT_ADDRSTR_MAX 128 /* "[v6]:port" or a unix path, with the NUL */

#define NT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define NT_MIN(a, b)     ((a) < (b) ? (a) : (b))
#define NT_MAX(a, b)     ((a) > (b) ? (a) : (b))
/* the record that embeds ptr as its member */
#define nt_container_of(ptr, type, member)                                     \
	((type *)((char *)(ptr)-offsetof(type, member)))

/*
 * A peer's address in 22 bytes rather than a 128-byte sockaddr_storage:
 * every connection carries one. IPv4-mapped IPv6 addresses are stored as
 * IPv4 so that per-address limits see one client, not two.
 */
struct nt_peer {
	sa_family_t family; /* AF_INET, AF_INET6 or AF_UNIX */
	uint16_t port;      /* host order */
	uint8_t addr[16];   /* 4 bytes used for AF_INET */
	/* limits.per_ip: the prefix length its address was counted under,
	 * which its release must use; 0 = not counted (iplimit.c) */
	uint8_t counted;
};

void nt_peer_from_sockaddr(struct nt_peer *p, const struct sockaddr *sa,
                           socklen_t len);
/* "1.2.3.4:5", "[::1]:5" or "unix" */
void nt_peer_format(const struct nt_peer *p, char *buf, size_t size);

/* "1.2.3.4:80", "[::1]:80", "/path" or "unix" for an unnamed socket */
void nt_sockaddr_format(const struct sockaddr *sa, socklen_t len, char *buf,
                        size_t size);

/* CLOCK_MONOTONIC in milliseconds / microseconds */
uint64_t nt_now_ms(void);
uint64_t nt_now_us(void);

/*
 * A countdown for "tell me when every thread has done it": made for n
 * parties plus the waiter, each of which drops its reference exactly once
 * (the parties through nt_latch_done(), the waiter through nt_latch_wait()),
 * so a party that comes late after the waiter gave up is still safe.
 */
struct nt_latch;

struct nt_latch *nt_latch_new(unsigned n);
void nt_latch_done(struct nt_latch *l);
/* Wait up to timeout_ms for every party, then drop the waiter's
 * reference: true if all were done in time. */
bool nt_latch_wait(struct nt_latch *l, int timeout_ms);

#endif
