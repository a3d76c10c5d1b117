#include "sync/folders.h"

#include "core/log.h"
#include "core/xalloc.h"
#include "maildir/path.h"
#include "sync/pattern.h"

#include <string.h>
#include <strings.h>

char folders_delimiter(const struct imap_folder_list *server)
{
	for (size_t i = 0; i < server->n; i++)
		if (strcmp(server->items[i].name, "INBOX") == 0 && server->items[i].delim)
			return server->items[i].delim;
	for (size_t i = 0; i < server->n; i++)
		if (server->items[i].delim)
			return server->items[i].delim;
	return 0;
}

static struct folder_entry *add(struct folder_set *set, const char *name, const char *rel)
{
	set->v = xgrow(set->v, &set->cap, set->n + 1, sizeof(*set->v));
	struct folder_entry *f = &set->v[set->n++];
	*f = (struct folder_entry){ .name = xstrdup(name), .rel = xstrdup(rel) };
	return f;
}

static struct folder_entry *find_rel(struct folder_set *set, const char *rel)
{
	for (size_t i = 0; i < set->n; i++)
		if (strcmp(set->v[i].rel, rel) == 0)
			return &set->v[i];
	return NULL;
}

static const struct state_folder *find_known(const struct state_folder *known, size_t n,
					     const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(known[i].name, name) == 0)
			return &known[i];
	return NULL;
}

static const char *const special_attrs[] = { "\\Sent", "\\Drafts", "\\Junk", "\\Trash",
					     "\\Archive" };
static const unsigned special_bits[] = { FOLDER_SENT, FOLDER_DRAFTS, FOLDER_JUNK, FOLDER_TRASH,
					 FOLDER_ARCHIVE };

/* Where a server folder lives locally: the state's path once known, else its
 * mapped name, or its special-use name with special_use_names. */
static bool local_path(const struct account_conf *a, const struct imap_folder *f,
		       const struct state_folder *k, struct buf *out)
{
	if (k) {
		buf_puts(out, k->path);
		return true;
	}
	enum maildir_layout layout = (enum maildir_layout)a->layout;
	struct err e;
	for (size_t i = 0; a->special_use_names && i < ARRAY_SIZE(special_bits); i++) {
		if (!(f->attrs & special_bits[i]))
			continue;
		const char *local = maildir_special_use_name(special_attrs[i]);
		return maildir_path_from_server(out, layout, local, strlen(local), 0, &e) == 0;
	}
	if (maildir_path_from_server(out, layout, f->name, strlen(f->name), f->delim, &e) < 0) {
		log_warn("account=%s folder=\"%s\" skipped: %s", a->name, f->name, e.msg);
		return false;
	}
	return true;
}

/* The SMTP outbox is a local folder only (INTERFACE.md, "On disk"). */
static bool is_outbox(const struct account_conf *a, const char *rel)
{
	if (!a->smtp)
		return false;
	struct buf out = { 0 };
	struct err e;
	bool same = maildir_path_from_server(&out, (enum maildir_layout)a->layout, a->smtp->outbox,
					     strlen(a->smtp->outbox), '/', &e) == 0 &&
		    strcmp(buf_str(&out), rel) == 0;
	buf_free(&out);
	return same;
}

static bool creates(enum folder_policy p, bool locally)
{
	return p == FOLDERS_BOTH || p == (locally ? FOLDERS_LOCAL : FOLDERS_REMOTE);
}

static void plan_server_folders(const struct account_conf *a,
				const struct imap_folder_list *server,
				const struct state_folder *known, size_t nknown,
				struct folder_set *set)
{
	/* Special-use folders first, so their short local names win a clash. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < server->n; i++) {
			const struct imap_folder *f = &server->items[i];
			bool special = a->special_use_names && (f->attrs & FOLDER_SPECIAL_USE);
			if (special != (pass == 0) || (f->attrs & FOLDER_NOSELECT) ||
			    !pattern_selects(a->imap->folders, f->name, f->delim))
				continue;
			const struct state_folder *k = find_known(known, nknown, f->name);
			struct buf rel = { 0 };
			if (!local_path(a, f, k, &rel))
				continue;
			if (is_outbox(a, buf_str(&rel))) {
				log_warn("account=%s folder=\"%s\" skipped: its local name \"%s\" is "
					 "the outbox, which is never synced",
					 a->name, f->name, buf_str(&rel));
				buf_free(&rel);
				continue;
			}
			if (find_rel(set, buf_str(&rel))) {
				log_warn("account=%s folder=\"%s\" skipped: its local name \"%s\" "
					 "is taken by another folder",
					 a->name, f->name, buf_str(&rel));
				buf_free(&rel);
				continue;
			}
			if (!k && strchr(buf_str(&rel), '%'))
				log_info("account=%s folder=\"%s\" (\"%s\" on the wire) is kept locally "
					 "as \"%s\": its name has characters a path cannot hold safely",
					 a->name, f->name, f->wire, buf_str(&rel));
			struct folder_entry *e = add(set, f->name, buf_str(&rel));
			buf_free(&rel);
			e->attrs = f->attrs;
			e->status = f->status;
			e->known = k;
			e->fate = FATE_SYNC;
		}
}

static void plan_known_gone(const struct account_conf *a, const struct state_folder *known,
			    size_t nknown, struct folder_set *set)
{
	for (size_t i = 0; i < nknown; i++) {
		const struct state_folder *k = &known[i];
		bool listed = false;
		for (size_t j = 0; j < set->n && !listed; j++)
			listed = set->v[j].known == k;
		if (listed)
			continue;
		struct folder_entry *e = add(set, k->name, k->path);
		e->known = k;
		e->fate = FATE_GONE_REMOTE;
		e->why = xasprintf("folder \"%s\" is no longer on the server (or no longer "
				   "selected by folders)",
				   k->name);
		(void)a;
	}
}

static void plan_local_folders(const struct account_conf *a, const struct maildir_tree *tree,
			       char delim, struct folder_set *set)
{
	for (size_t i = 0; i < tree->n; i++) {
		const struct maildir_tree_entry *t = &tree->v[i];
		struct folder_entry *e = find_rel(set, t->rel);
		if (e) {
			e->local_exists = true;
			continue;
		}
		if (!t->name || memchr(t->name, 0, t->name_len)) {
			log_warn("account=%s local folder \"%s\" skipped: %s", a->name, t->rel,
				 t->why ? t->why : "no server name");
			continue;
		}
		if (is_outbox(a, t->rel) || !pattern_selects(a->imap->folders, t->name, delim))
			continue;
		e = add(set, t->name, t->rel);
		e->local_exists = true;
		if (creates(a->imap->create_folders, false)) {
			e->fate = FATE_CREATE_REMOTE;
		} else {
			e->fate = FATE_SKIP;
			e->why = xasprintf("local folder \"%s\" is not on the server and "
					   "create_folders does not create it there",
					   t->rel);
		}
	}
}

/* A known folder whose Maildir is gone, and a new server folder that may not
 * be created locally. */
static void settle_missing_local(const struct account_conf *a, struct folder_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		struct folder_entry *e = &set->v[i];
		if (e->fate != FATE_SYNC || e->local_exists)
			continue;
		if (e->known && e->known->last_sync) {
			e->fate = FATE_GONE_LOCAL;
			e->why = xasprintf("the Maildir of folder \"%s\" (%s) is gone", e->name,
					   e->rel);
		} else if (!creates(a->imap->create_folders, true) && !e->known) {
			e->fate = FATE_SKIP;
			e->why = xasprintf("server folder \"%s\" has no Maildir and create_folders "
					   "does not create it locally",
					   e->name);
		}
	}
}

void folders_plan(const struct account_conf *a, const struct imap_folder_list *server,
		  const struct state_folder *known, size_t nknown, const struct maildir_tree *tree,
		  struct folder_set *set)
{
	set->delim = folders_delimiter(server);
	plan_server_folders(a, server, known, nknown, set);
	plan_known_gone(a, known, nknown, set);
	plan_local_folders(a, tree, set->delim, set);
	settle_missing_local(a, set);
}

const char *folders_special(const struct folder_set *set, unsigned attr)
{
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].attrs & attr)
			return set->v[i].name;
	return NULL;
}

void folders_free(struct folder_set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i].name);
		free(set->v[i].rel);
		free(set->v[i].why);
	}
	free(set->v);
	*set = (struct folder_set){ 0 };
}
