/*
 * NATTER_E* codes: their messages and names, from the one list in
 * natter.h, and the mapping from the errno values sockets report.
 */
#include <errno.h>
#include <time.h>

#include "natter-int.h"

const char *natter_strerror(int err)
{
	switch (err) {
	case NATTER_OK:
		return "success";
#define NATTER__STRERROR(name, value, msg)                                     \
	case NATTER_##name:                                                    \
		return msg;
		NATTER_ERRNO_MAP(NATTER__STRERROR)
#undef NATTER__STRERROR
	}
	return "unknown error";
}

const char *natter_err_name(int err)
{
	switch (err) {
	case NATTER_OK:
		return "NATTER_OK";
#define NATTER__ERRNAME(name, value, msg)                                      \
	case NATTER_##name:                                                    \
		return "NATTER_" #name;
		NATTER_ERRNO_MAP(NATTER__ERRNAME)
#undef NATTER__ERRNAME
	}
	return "NATTER_UNKNOWN";
}

const char *natter_version(void)
{
	return NATTER_VERSION;
}

int natter__errno_code(int sys_errno)
{
	switch (sys_errno) {
	case ECONNREFUSED:
		return NATTER_ECONNREFUSED;
	case ENOENT:
		return NATTER_ENOENT;
	case ENETUNREACH:
	case EHOSTUNREACH:
	case ENETDOWN:
	case EHOSTDOWN:
	case EADDRNOTAVAIL:
	case EAFNOSUPPORT:
		return NATTER_EUNREACH;
	case ETIMEDOUT:
		return NATTER_ETIMEDOUT;
	case ECONNRESET:
	case ECONNABORTED:
	case EPIPE:
		return NATTER_ECONNRESET;
	case ENOMEM:
	case ENOBUFS:
		return NATTER_ENOMEM;
	default:
		return NATTER_EIO;
	}
}

uint64_t natter__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
