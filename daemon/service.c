/*
 * The table of services and what is done to all of them at once: start,
 * reload, stop, status. Each entry is defined by its service (echo.c,
 * chat.c), so that this file, config.c and the worker depend on none.
 */
#include <stdio.h>
#include <string.h>

#include "service.h"

static const struct nt_service_def *const services[NT_SERVICES] = {
    [NT_SERVICE_ECHO] = &nt_echo_service,
    [NT_SERVICE_CHAT] = &nt_chat_service,
};

const struct nt_service_def *nt_service_get(enum nt_service s)
{
	return services[(size_t)s < NT_SERVICES ? s : NT_SERVICE_ECHO];
}

int nt_service_find(const char *name)
{
	for (size_t i = 0; i < NT_SERVICES; i++)
		if (!strcmp(name, services[i]->name))
			return (int)i;
	return -1;
}

const char *nt_service_name(enum nt_service s)
{
	return (size_t)s < NT_SERVICES ? services[s]->name : "unknown";
}

void nt_service_names(char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NT_SERVICES && n < size; i++) {
		const char *sep = !i ? "" : i + 1 < NT_SERVICES ? ", " : " or ";
		int k = snprintf(buf + n, size - n, "%s\"%s\"", sep,
		                 services[i]->name);
		if (k < 0)
			return;
		n += (size_t)k;
	}
}

int nt_services_start(const struct nt_config *cfg, unsigned n_workers,
                      void *shared[NT_SERVICES])
{
	for (size_t i = 0; i < NT_SERVICES; i++) {
		shared[i] = NULL;
		if (!services[i]->start)
			continue;
		int rc = services[i]->start(cfg, n_workers, &shared[i]);
		if (rc < 0) {
			nt_services_stop(shared);
			return rc;
		}
	}
	return 0;
}

void nt_services_reload(void *const shared[NT_SERVICES],
                        const struct nt_config *cfg)
{
	for (size_t i = 0; i < NT_SERVICES; i++)
		if (services[i]->reload && shared[i])
			services[i]->reload(shared[i], cfg);
}

void nt_services_stop(void *shared[NT_SERVICES])
{
	for (size_t i = 0; i < NT_SERVICES; i++) {
		if (services[i]->stop && shared[i])
			services[i]->stop(shared[i]);
		shared[i] = NULL;
	}
}

void nt_services_status(void *const shared[NT_SERVICES], char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NT_SERVICES && n + 2 < size; i++) {
		if (!services[i]->status || !shared[i])
			continue;
		memcpy(buf + n, ", ", 3);
		int k =
		    services[i]->status(shared[i], buf + n + 2, size - n - 2);
		if (k < 0) {
			buf[n] = '\0';
			continue;
		}
		n = strnlen(buf, size);
	}
}
