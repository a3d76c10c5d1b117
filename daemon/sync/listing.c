/* What the server holds: the listing part of a folder job. QRESYNC delivers
 * it with SELECT; CONDSTORE asks for the changes since the known modseq and
 * looks for expunges only when the message count says there were some; a
 * server without either lists UIDs and flags of the whole folder. */
#include "core/log.h"
#include "core/xalloc.h"
#include "imap/seqset.h"
#include "maildir/digest.h"
#include "maildir/flags.h"
#include "sync/job.h"

#include <stdlib.h>
#include <string.h>

/* A UID set is cut into commands of at most this many bytes (servers limit
 * command lines; 8 KB is safe everywhere, RFC 7162 section 4 asks for it). */
#define UID_SET_MAX 8000

/* ---- the listing's memory ---- */

void uid_vec_push(struct uid_vec *v, uint32_t uid)
{
	v->v = xgrow(v->v, &v->cap, v->n + 1, sizeof(*v->v));
	v->v[v->n++] = uid;
}

static size_t slot_of(const struct remote_vec *rv, uint32_t uid)
{
	return (uid * 2654435761u) & (rv->nslots - 1);
}

static void rehash(struct remote_vec *rv)
{
	free(rv->slots);
	rv->nslots = rv->nslots ? rv->nslots * 2 : 256;
	rv->slots = xcalloc(rv->nslots, sizeof(*rv->slots));
	for (size_t i = 0; i < rv->n; i++) {
		size_t s = slot_of(rv, rv->v[i].uid);
		while (rv->slots[s])
			s = (s + 1) & (rv->nslots - 1);
		rv->slots[s] = (uint32_t)i + 1;
	}
}

struct plan_remote *remote_find(struct remote_vec *rv, uint32_t uid)
{
	if (!rv->nslots)
		return NULL;
	for (size_t s = slot_of(rv, uid); rv->slots[s]; s = (s + 1) & (rv->nslots - 1))
		if (rv->v[rv->slots[s] - 1].uid == uid)
			return &rv->v[rv->slots[s] - 1];
	return NULL;
}

/* The entry of uid, added when new. Pointers stay valid until the next add. */
static struct plan_remote *remote_get(struct remote_vec *rv, uint32_t uid)
{
	struct plan_remote *r = remote_find(rv, uid);
	if (r)
		return r;
	if (2 * (rv->n + 1) > rv->nslots)
		rehash(rv); /* at most half full keeps probes short */
	rv->v = xgrow(rv->v, &rv->cap, rv->n + 1, sizeof(*rv->v));
	r = &rv->v[rv->n++];
	*r = (struct plan_remote){ .uid = uid };
	size_t s = slot_of(rv, uid);
	while (rv->slots[s])
		s = (s + 1) & (rv->nslots - 1);
	rv->slots[s] = (uint32_t)rv->n;
	return r;
}

void remote_vec_clear(struct remote_vec *rv)
{
	for (size_t i = 0; i < rv->n; i++) {
		free((char *)rv->v[i].id.msgid);
		free((unsigned char *)rv->v[i].id.hash);
	}
	free(rv->v);
	free(rv->slots);
	*rv = (struct remote_vec){ 0 };
}

/* ---- untagged data ---- */

static unsigned fetch_flags(const struct imap_value *list)
{
	const struct imap_value *items;
	size_t n;
	unsigned flags = 0;
	if (!imap_value_list(list, &items, &n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		const char *a = imap_value_atom(&items[i]);
		if (a)
			flags |= flags_from_imap_name(a, strlen(a));
	}
	return flags;
}

/* `* 12 FETCH (UID 40 RFC822.SIZE 2119 BODY[HEADER.FIELDS (MESSAGE-ID)] {50} ...)` */
static void fetch_ident(struct plan_remote *r, struct imap_response *resp)
{
	uint64_t size;
	if (imap_value_number(imap_response_fetch(resp, "RFC822.SIZE"), &size))
		r->id.size = size;
	const struct imap_value *hdr = imap_response_fetch(resp, "BODY[HEADER.FIELDS (MESSAGE-ID)]");
	size_t len;
	const char *text = imap_value_string(hdr, &len);
	if (!text)
		return;
	struct maildir_digest *d = maildir_digest_new();
	struct maildir_ident id;
	maildir_digest_feed(d, text, len);
	maildir_digest_end(d, &id);
	maildir_digest_free(&d);
	free((char *)r->id.msgid);
	r->id.msgid = xstrdup(id.message_id);
}

/* `* 12 FETCH (UID 40 BODY[] <sink>)`: the body went through a digest. */
static void fetch_hash(struct plan_remote *r, struct imap_response *resp)
{
	const struct imap_value *body = imap_response_fetch(resp, "BODY[]");
	struct maildir_digest *d;
	if (!body || !imap_value_sink(body, NULL, NULL) || !(d = imap_response_take_sink(resp, body)))
		return;
	struct maildir_ident id;
	maildir_digest_end(d, &id);
	maildir_digest_free(&d);
	unsigned char *hash = xmalloc(PLAN_HASH_LEN);
	memcpy(hash, id.body_hash, PLAN_HASH_LEN);
	free((unsigned char *)r->id.hash);
	r->id.hash = hash;
}

static void on_fetch(struct folder_job *job, struct imap_response *r)
{
	uint64_t uid;
	if (!imap_value_number(imap_response_fetch(r, "UID"), &uid) || uid == 0 ||
	    uid > UINT32_MAX)
		return; /* a FETCH without UID: a flag change we learn again next time */
	if (job->listing == LISTING_BODY) {
		transfer_fetch_response(job, r);
		return;
	}
	if (job->listing == LISTING_NONE)
		return; /* after planning: changes made now are for the next sync */
	const struct imap_value *flags = imap_response_fetch(r, "FLAGS");
	struct plan_remote *rem = remote_get(&job->remote, (uint32_t)uid);
	if (flags)
		rem->flags = fetch_flags(flags);
	if (job->listing == LISTING_IDENT)
		fetch_ident(rem, r);
	else if (job->listing == LISTING_HASH)
		fetch_hash(rem, r);
}

/* `* VANISHED (EARLIER) 41,43:116`: only UIDs that rows hold matter, so the
 * set is tested row by row instead of being walked (it may be 1:4294967295). */
static void on_vanished(struct folder_job *job, struct imap_response *r)
{
	const struct imap_value *set = &r->args[r->nargs - 1];
	size_t len;
	const char *text = imap_value_astring(set, &len);
	struct imap_seqset s = { 0 };
	struct err e;
	if (!text || imap_seqset_parse(&s, text, len, 0, &e) < 0) {
		log_warn("account=%s folder=%s ignoring a malformed VANISHED: %s", job->acct,
			 job->name, imap_response_line(r));
		return;
	}
	for (size_t i = 0; i < job->rows.n; i++)
		if (job->rows.v[i].uid && imap_seqset_contains(&s, job->rows.v[i].uid))
			uid_vec_push(&job->vanished, job->rows.v[i].uid);
	imap_seqset_free(&s);
}

void listing_untagged(struct folder_job *job, struct imap_response *r)
{
	if (!r->name)
		return;
	if (strcmp(r->name, "FETCH") == 0)
		on_fetch(job, r);
	else if (strcmp(r->name, "VANISHED") == 0 && r->nargs > 0)
		on_vanished(job, r);
}

/* ---- commands ---- */

void job_send_uid_sets(struct folder_job *job, const uint32_t *uids, size_t n,
		       const char *before, const char *after, imap_done_cb done)
{
	struct imap_seqset set = { 0 };
	imap_seqset_from_sorted(&set, uids, n);
	for (size_t first = 0; first < set.n;) {
		struct buf b = { 0 };
		first = imap_seqset_format(&b, &set, first, UID_SET_MAX);
		struct imap_cmd *cmd = imap_cmd_new(job->imap, "%s %s%s", before, buf_str(&b), after);
		buf_free(&b);
		job->inflight++;
		imap_cmd_send(cmd, done, job);
	}
	imap_seqset_free(&set);
}

static size_t rows_with_uid(const struct folder_job *job)
{
	size_t n = 0;
	for (size_t i = 0; i < job->rows.n; i++)
		n += job->rows.v[i].uid != 0;
	return n;
}

static int uid_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The server's whole UID list, from `* SEARCH 1 2 3 5` or
 * `* ESEARCH (TAG "A5") UID ALL 1:3,5`: rows whose UID is not in it were
 * expunged. */
static void on_search(void *ctx, struct imap_response *r)
{
	struct folder_job *job = ctx;
	struct imap_seqset present = { 0 };
	if (strcmp(r->name, "SEARCH") == 0) {
		struct uid_vec uids = { 0 };
		for (size_t i = 0; i < r->nargs; i++) {
			uint64_t u;
			if (imap_value_number(&r->args[i], &u) && u && u <= UINT32_MAX)
				uid_vec_push(&uids, (uint32_t)u);
		}
		qsort(uids.v, uids.n, sizeof(uint32_t), uid_cmp);
		imap_seqset_from_sorted(&present, uids.v, uids.n);
		free(uids.v);
	} else {
		for (size_t i = 0; i + 1 < r->nargs; i++) {
			size_t len;
			const char *text;
			if (imap_value_atom_eq(&r->args[i], "ALL") &&
			    (text = imap_value_astring(&r->args[i + 1], &len)))
				imap_seqset_parse(&present, text, len, 0, NULL);
		}
	}
	for (size_t i = 0; i < job->rows.n; i++) {
		uint32_t uid = job->rows.v[i].uid;
		if (uid && !imap_seqset_contains(&present, uid))
			uid_vec_push(&job->vanished, uid);
	}
	imap_seqset_free(&present);
}

static void search_all(struct folder_job *job)
{
	bool esearch = imap_client_has(job->imap, CAP_ESEARCH);
	struct imap_cmd *cmd =
		imap_cmd_new(job->imap, esearch ? "UID SEARCH RETURN (ALL) ALL" : "UID SEARCH ALL");
	imap_cmd_claim(cmd, "SEARCH", on_search);
	imap_cmd_claim(cmd, "ESEARCH", on_search);
	job->inflight++;
	imap_cmd_send(cmd, job_command_done, job);
}

/* After the CONDSTORE changes: the count tells whether anything was expunged
 * (every row's message still there plus the new ones make EXISTS). */
static void on_changes(void *ctx, const struct imap_reply *reply)
{
	struct folder_job *job = ctx;
	job->inflight--;
	if (reply->status != IMAP_STATUS_OK) {
		job_command_failed(job, reply);
		job_step_done(job);
		return;
	}
	size_t fresh = 0;
	for (size_t i = 0; i < job->remote.n; i++)
		fresh += !state_msgs_uid(&job->rows, job->remote.v[i].uid);
	if (job->exists == rows_with_uid(job) + fresh) {
		job_step_done(job);
		return;
	}
	search_all(job);
}

void listing_start(struct folder_job *job)
{
	const struct state_folder *f = job->fc.folder;
	if (job->select_qresync && !job->nomodseq) {
		job->remote_full = false; /* SELECT brought the changes */
		job_step_done(job);
		return;
	}
	bool condstore = imap_client_has(job->imap, CAP_CONDSTORE) && !job->nomodseq &&
			 f->highestmodseq && f->uidnext;
	if (condstore && job->highestmodseq == f->highestmodseq && job->uidnext == f->uidnext &&
	    job->exists == rows_with_uid(job)) {
		job->remote_full = false; /* nothing changed at all */
		job_step_done(job);
		return;
	}
	job->remote_full = !condstore;
	if (job->exists == 0 && job->exists_known) {
		job_step_done(job);
		return;
	}
	job->inflight++;
	if (condstore) {
		struct imap_cmd *cmd = imap_cmd_new(job->imap, "UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE %llu)",
						    (unsigned long long)f->highestmodseq);
		imap_cmd_send(cmd, on_changes, job);
		return;
	}
	imap_cmd_send(imap_cmd_new(job->imap, "UID FETCH 1:* (UID FLAGS)"), job_command_done, job);
}

void listing_fetch_idents(struct folder_job *job, const uint32_t *uids, size_t n)
{
	job->listing = LISTING_IDENT;
	job_send_uid_sets(job, uids, n, "UID FETCH",
			  " (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])", job_command_done);
}

/* ---- body hashes ---- */

static void *hash_open(void *ctx, const struct imap_response *partial, const char *item,
		       uint64_t size)
{
	(void)ctx;
	(void)size;
	if (!partial->name || strcmp(partial->name, "FETCH") != 0 || !item ||
	    strcmp(item, "BODY[]") != 0)
		return NULL;
	return maildir_digest_new();
}

static int hash_write(void *ctx, void *handle, const char *p, size_t n)
{
	(void)ctx;
	maildir_digest_feed(handle, p, n);
	return 0;
}

static void hash_abort(void *ctx, void *handle)
{
	struct maildir_digest *d = handle;
	(void)ctx;
	maildir_digest_free(&d);
}

static void on_hashes(void *ctx, const struct imap_reply *reply)
{
	struct folder_job *job = ctx;
	if (reply->status != IMAP_STATUS_OK)
		job_command_failed(job, reply);
	if (--job->inflight > 0)
		return;
	imap_client_set_sink(job->imap, NULL);
	job->listing = LISTING_IDENT;
	job_step_done(job);
}

void listing_fetch_hashes(struct folder_job *job, const uint32_t *uids, size_t n)
{
	struct imap_sink sink = { hash_open, hash_write, hash_abort, job };
	imap_client_set_sink(job->imap, &sink);
	job->listing = LISTING_HASH;
	job_send_uid_sets(job, uids, n, "UID FETCH", " (UID BODY.PEEK[])", on_hashes);
}
