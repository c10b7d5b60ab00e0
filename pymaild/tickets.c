/*
 * TLS session ticket keys (RFC 5077, RFC 8446 4.6.1) for smtpd and
 * pop3d. The parent makes them, so that every context of a helper (a
 * reload makes a new one) opens the same tickets: a returning client
 * resumes across a reload. A new key every TLS_TICKET_ROTATE seconds and
 * at each reload; the one before still opens tickets, older ones do not,
 * so a stolen ticket key is worth at most two periods of sessions.
 */
#include <sys/random.h>

#include <errno.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "pymaild.h"

static uint8_t		 keys[TLS_TICKET_KEYS_MAX][TLS_TICKET_KEY_LEN];
static uint32_t		 nkeys;
static struct event	*rotate_ev;

static const enum proc_role ticket_roles[] = { PROC_SMTPD, PROC_POP3D };

static void
random_key(uint8_t *k)
{
	size_t	got = 0;
	ssize_t	n;

	while (got < TLS_TICKET_KEY_LEN) {
		n = getrandom(k + got, TLS_TICKET_KEY_LEN - got, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			fatal("getrandom");
		got += n;
	}
}

static void
send_keys(enum proc_role r)
{
	struct msgbuild	mb;
	uint32_t	i;

	mb_init(&mb);
	mb_u32(&mb, nkeys);
	for (i = 0; i < nkeys; i++)
		mb_data(&mb, keys[i], TLS_TICKET_KEY_LEN);
	parent_send(r, IMSG_TLS_TICKET_KEYS, &mb, -1);
	explicit_bzero(mb.buf, mb.len);
}

/* A new newest key; the newest becomes the one before. */
void
tickets_rotate(void)
{
	size_t	i;

	if (env->conf.ntls == 0)
		return;
	memmove(keys[1], keys[0], TLS_TICKET_KEY_LEN);
	random_key(keys[0]);
	if (nkeys < TLS_TICKET_KEYS_MAX)
		nkeys++;
	for (i = 0; i < sizeof(ticket_roles) / sizeof(ticket_roles[0]); i++)
		if (env->children[ticket_roles[i]].ready)
			send_keys(ticket_roles[i]);
	log_debug("tls: new session ticket key");
}

static void
rotate_timer(int fd, short ev, void *arg)
{
	struct timeval	tv = { TLS_TICKET_ROTATE, 0 };

	tickets_rotate();
	evtimer_add(rotate_ev, &tv);
}

/* Before the helpers say hello: the first key, and its timer. */
void
tickets_init(struct event_base *base)
{
	struct timeval	tv = { TLS_TICKET_ROTATE, 0 };

	if (env->conf.ntls == 0)
		return;
	random_key(keys[0]);
	nkeys = 1;
	if ((rotate_ev = evtimer_new(base, rotate_timer, NULL)) == NULL)
		fatalx("evtimer_new");
	evtimer_add(rotate_ev, &tv);
}

void
tickets_hello(struct child *c)
{
	size_t	i;

	if (nkeys == 0)
		return;
	for (i = 0; i < sizeof(ticket_roles) / sizeof(ticket_roles[0]); i++)
		if (ticket_roles[i] == c->role)
			send_keys(c->role);
}
