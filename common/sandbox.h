/*
 * System call filters (DESIGN.md B2): each helper, once set up, allows
 * only the calls its role needs; anything else kills the process, and the
 * parent then stops the daemon (fail closed).
 */
#ifndef PYMAILD_SANDBOX_H
#define PYMAILD_SANDBOX_H

#include "proto.h"

/* Call after the privilege drop and all set-up, before the event loop. */
void	sandbox_enter(enum proc_role role);

#endif
