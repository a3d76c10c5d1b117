/* The local half of a POP3 fetch: the INBOX Maildir and the rows that say
 * what is in it. The order of every write is docs/STATE.md's: a row as
 * downloading before its file is renamed into new/, settled after the batch
 * is durable, forgotten only once the server no longer holds the message. */
#include "pop3/fetch_priv.h"

#include "core/buf.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "maildir/folder.h"
#include "maildir/path.h"
#include "maildir/scan.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A batch is made durable when it holds this many messages or bytes. */
#define BATCH_MESSAGES 256
#define BATCH_BYTES (64u << 20)

/* The INBOX of the account's layout: ROOT/INBOX, or the root for maildir++. */
static int inbox_path(struct pop3_fetch *f, struct err *e)
{
	struct buf rel = { 0 };
	enum maildir_layout layout =
	    f->a->layout == LAYOUT_MAILDIRPP ? MAILDIR_LAYOUT_PLUSPLUS : MAILDIR_LAYOUT_VERBATIM;
	int rc = maildir_path_from_server(&rel, layout, "INBOX", 5, '/', e);
	if (rc == 0)
		f->path = rel.len ? xasprintf("%s/%s", f->a->maildir, buf_str(&rel))
				  : xstrdup(f->a->maildir);
	buf_free(&rel);
	return rc;
}

static void clean_tmp(struct pop3_fetch *f)
{
	struct err e;
	size_t removed = 0;
	if (maildir_clean_tmp(f->md, MAILDIR_TMP_MAX_AGE, &removed, &e) < 0)
		log_warn("account=%s folder=INBOX cleaning tmp/: %s", f->a->name, e.msg);
	else if (removed)
		log_info("account=%s folder=INBOX event=tmp-cleaned files=%zu", f->a->name,
			 removed);
}

static const struct maildir_entry *find_base(const struct maildir_scan *s, const char *base)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->v[mid].base, base);
		if (c == 0)
			return &s->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A download cut off between its row and the rename of its file: settled
 * when the file is in new/ or cur/ (the reader may have moved it to cur/
 * already), forgotten (and fetched again) when it is not. */
static int recover(struct pop3_fetch *f, struct err *e)
{
	bool any = false;
	for (size_t i = 0; i < f->rows.n && !any; i++)
		any = f->rows.v[i].state == STATE_DOWNLOADING;
	if (!any)
		return 0;
	struct maildir_scan *scan = NULL;
	int rc = maildir_scan(f->md, 0, &scan, e);
	if (rc == 0)
		rc = state_begin(f->st, e);
	unsigned settled = 0, dropped = 0;
	for (size_t i = 0; i < f->rows.n && rc == 0; i++) {
		const struct state_pop3 *r = &f->rows.v[i];
		if (r->state != STATE_DOWNLOADING)
			continue;
		bool there = find_base(scan, r->base) != NULL;
		rc = there ? state_pop3_settle(f->st, r->uidl, e)
			   : state_pop3_delete(f->st, r->uidl, e);
		settled += there;
		dropped += !there;
	}
	rc = rc == 0 ? state_commit(f->st, e) : rc;
	if (rc)
		state_rollback(f->st, NULL);
	maildir_scan_free(&scan);
	if (rc == 0)
		log_info("account=%s event=recovered settled=%u refetch=%u", f->a->name, settled,
			 dropped);
	return rc == 0 ? state_pop3_load(f->st, &f->rows, e) : rc;
}

int pop3_store_open(struct pop3_fetch *f, struct err *e)
{
	int rc = inbox_path(f, e);
	if (rc == 0)
		rc = maildir_ensure(f->path, e);
	if (rc == 0)
		rc = maildir_open(&f->md, f->path, "INBOX", e);
	if (rc < 0)
		return rc;
	clean_tmp(f);
	f->batch = maildir_batch_new();
	rc = state_pop3_load(f->st, &f->rows, e);
	return rc == 0 ? recover(f, e) : rc;
}

bool pop3_store_has(struct pop3_fetch *f, const char *id)
{
	if (state_pop3_find(&f->rows, id))
		return true;
	/* ... or one of the batch not yet durable (the same message twice). */
	for (size_t i = 0; i < f->ndl; i++)
		if (strcmp(f->dl[i].m->id, id) == 0)
			return true;
	return false;
}

static int record_intents(struct pop3_fetch *f, struct err *e)
{
	int rc = state_begin(f->st, e);
	for (size_t i = 0; i < f->ndl && rc == 0; i++) {
		struct state_pop3 r = {
			.uidl = f->dl[i].m->id,
			.base = (char *)maildir_delivery_base(f->dl[i].d),
			.size = f->dl[i].m->size,
			.fetched = f->now,
			.state = STATE_DOWNLOADING,
		};
		rc = state_pop3_add(f->st, &r, e);
	}
	rc = rc == 0 ? state_commit(f->st, e) : rc;
	if (rc)
		state_rollback(f->st, NULL);
	return rc;
}

static int settle(struct pop3_fetch *f, struct err *e)
{
	int rc = state_begin(f->st, e);
	for (size_t i = 0; i < f->ndl && rc == 0; i++) {
		struct fetch_msg *m = f->dl[i].m;
		if (maildir_delivery_status(f->dl[i].d, NULL) == 0) {
			rc = state_pop3_settle(f->st, m->id, e);
			m->known = true;
			m->fetched_at = f->now;
			f->res.fetched++;
		} else {
			rc = state_pop3_delete(f->st, m->id, e);
		}
	}
	rc = rc == 0 ? state_commit(f->st, e) : rc;
	if (rc)
		state_rollback(f->st, NULL);
	return rc;
}

int pop3_store_commit(struct pop3_fetch *f, struct err *e)
{
	if (f->ndl == 0)
		return 0;
	int rc = record_intents(f, e);
	struct err fe;
	int files_rc = rc == 0 ? maildir_batch_commit(f->batch, &fe) : 0;
	if (rc == 0)
		rc = settle(f, e);
	/* Uncommitted deliveries (a failed intent) are removed with the batch. */
	maildir_batch_free(&f->batch);
	f->batch = maildir_batch_new();
	f->ndl = 0;
	f->batch_bytes = 0;
	if (rc == 0 && files_rc < 0) {
		*e = fe;
		rc = files_rc;
	}
	return rc;
}

int pop3_store_add(struct pop3_fetch *f, struct maildir_delivery *d, struct fetch_msg *m,
		   struct err *e)
{
	f->dl = xgrow(f->dl, &f->capdl, f->ndl + 1, sizeof(*f->dl));
	f->dl[f->ndl++] = (struct download){ d, m };
	f->batch_bytes += m->size;
	if (f->ndl < BATCH_MESSAGES && f->batch_bytes < BATCH_BYTES)
		return 0;
	return pop3_store_commit(f, e);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

const char **pop3_store_sorted_ids(const struct pop3_fetch *f, bool skip_deleted, size_t *n)
{
	const char **v = xcalloc(f->count + 1, sizeof(*v));
	*n = 0;
	for (uint32_t i = 0; i < f->count; i++)
		if (f->msgs[i].id && !(skip_deleted && f->msgs[i].deleted))
			v[(*n)++] = f->msgs[i].id;
	qsort(v, *n, sizeof(*v), cmp_str);
	return v;
}

static bool in_sorted(const char **v, size_t n, const char *id)
{
	return bsearch(&id, v, n, sizeof(*v), cmp_str) != NULL;
}

/* Deletes the rows whose unique-id is not in ids[0..n) (sorted). */
static int forget_others(struct pop3_fetch *f, const char **ids, size_t n, struct err *e)
{
	size_t gone = 0;
	int rc = 0;
	for (size_t i = 0; i < f->rows.n && rc == 0; i++) {
		if (in_sorted(ids, n, f->rows.v[i].uidl))
			continue;
		if (gone++ == 0)
			rc = state_begin(f->st, e);
		if (rc == 0)
			rc = state_pop3_delete(f->st, f->rows.v[i].uidl, e);
	}
	rc = rc == 0 && gone ? state_commit(f->st, e) : rc;
	if (rc)
		state_rollback(f->st, NULL);
	if (rc == 0 && gone)
		log_debug("account=%s event=forgotten rows=%zu", f->a->name, gone);
	return rc == 0 && gone ? state_pop3_load(f->st, &f->rows, e) : rc;
}

/* The server no longer has it (we deleted it, or another client did): the
 * row is of no use, and RFC 1939 lets a server reuse a unique-id only for a
 * new message, which must then be fetched. */
int pop3_store_prune(struct pop3_fetch *f, struct err *e)
{
	size_t n;
	const char **ids = pop3_store_sorted_ids(f, false, &n);
	int rc = forget_others(f, ids, n, e);
	free(ids);
	return rc;
}

/* With UIDL, the rows of what the server removed. Without UIDL every message
 * the server holds was downloaded and named this session (keep = false), so
 * a row whose content is not among those left is of no use any more. */
int pop3_store_forget_deleted(struct pop3_fetch *f, struct err *e)
{
	size_t n;
	const char **ids = pop3_store_sorted_ids(f, true, &n);
	int rc;
	if (!f->uidl) {
		rc = forget_others(f, ids, n, e);
		free(ids);
		return rc;
	}
	free(ids);
	rc = state_begin(f->st, e);
	for (uint32_t i = 0; i < f->count && rc == 0; i++)
		if (f->msgs[i].deleted)
			rc = state_pop3_delete(f->st, f->msgs[i].id, e);
	rc = rc == 0 ? state_commit(f->st, e) : rc;
	if (rc)
		state_rollback(f->st, NULL);
	return rc;
}

void pop3_store_record(struct pop3_fetch *f)
{
	struct state_folder row = { 0 };
	struct err e;
	if (!f->path)
		return;
	const char *rel = f->path + strlen(f->a->maildir);
	rel += *rel == '/';
	if (state_folder_get(f->st, "INBOX", rel, &row, &e) < 0)
		return;
	free(row.last_result);
	row.last_result = f->res.rc ? xstrdup(f->res.err.msg) : xstrdup("ok");
	if (f->res.rc == 0) {
		row.last_sync = (int64_t)time(NULL);
		row.messages = f->res.on_server;
		row.unread = 0;
	}
	if (state_folder_save(f->st, &row, &e) < 0)
		log_warn("account=%s %s", f->a->name, e.msg);
	state_folder_clear(&row);
}

void pop3_store_close(struct pop3_fetch *f)
{
	maildir_batch_free(&f->batch);
	free(f->dl);
	f->dl = NULL;
	f->ndl = 0;
	maildir_free(&f->md);
	state_pop3_list_free(&f->rows);
}
