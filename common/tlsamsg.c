/*
 * IMSG_TLSA_REPLY payloads (tlsamsg.h). outbound acts on these to
 * decide whether a server's certificate must match, so a field out of
 * range is refused rather than clamped.
 */
#include <string.h>

#include "envelope.h"
#include "imsg.h"
#include "tlsamsg.h"

static int
read_rr(struct msgread *mr, struct tlsa_rr *rr)
{
	uint32_t	 usage, selector, mtype, len;
	const void	*data;

	usage = mr_u32(mr);
	selector = mr_u32(mr);
	mtype = mr_u32(mr);
	len = mr_u32(mr);
	if (mr->err || usage > 255 || selector > 255 || mtype > 255 ||
	    len == 0 || len > TLSA_DATA_MAX)
		return -1;
	if ((data = mr_data(mr, len)) == NULL)
		return -1;
	rr->usage = usage;
	rr->selector = selector;
	rr->mtype = mtype;
	rr->len = len;
	memcpy(rr->data, data, len);
	return 0;
}

int
tlsa_read_reply(const void *payload, size_t len, struct tlsa_reply *r)
{
	struct msgread	mr;
	uint32_t	i;

	memset(r, 0, sizeof(*r));
	mr.p = payload;
	mr.len = len;
	mr.off = 0;
	mr.err = 0;
	r->req = mr_u32(&mr);
	r->status = mr_u32(&mr);
	r->authentic = mr_u32(&mr);
	mr_str(&mr, r->reason, sizeof(r->reason));
	r->n = mr_u32(&mr);
	if (mr.err || r->status > TLSA_TEMPFAIL || r->authentic > 1 ||
	    r->n > TLSA_RECORDS_MAX || (r->status != TLSA_FOUND && r->n) ||
	    !envelope_field_ok(r->reason, sizeof(r->reason)))
		return -1;
	for (i = 0; i < r->n; i++)
		if (read_rr(&mr, &r->rr[i]) == -1)
			return -1;
	return mr_end(&mr);
}

void
tlsa_build_reply(struct msgbuild *mb, const struct tlsa_reply *r)
{
	uint32_t	i;

	mb_init(mb);
	mb_u32(mb, r->req);
	mb_u32(mb, r->status);
	mb_u32(mb, r->authentic);
	mb_str(mb, r->reason);
	mb_u32(mb, r->n);
	for (i = 0; i < r->n; i++) {
		mb_u32(mb, r->rr[i].usage);
		mb_u32(mb, r->rr[i].selector);
		mb_u32(mb, r->rr[i].mtype);
		mb_u32(mb, r->rr[i].len);
		mb_data(mb, r->rr[i].data, r->rr[i].len);
	}
}
