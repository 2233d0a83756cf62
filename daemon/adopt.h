/*
 * Clients the previous natterd left in systemd's fd store, taken back at
 * start before anyone new is accepted, so that none loses its nick.
 */
#ifndef NT_ADOPT_H
#define NT_ADOPT_H

#include "sd.h"
#include "server.h"

/*
 * Hand every stored client to a worker and wait until they are all back
 * in their rooms, so that no new client can take a nick first.
 */
void nt_adopt_clients(struct nt_server *s, struct nt_sd_fds *fds);

#endif
