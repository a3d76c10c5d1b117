#include "imap/list.h"

#include "core/log.h"
#include "core/xalloc.h"
#include "imap/utf7.h"

#include <string.h>
#include <strings.h>

struct list_req {
	struct imap_client *c;
	struct imap_folder_list list;
	imap_list_cb cb;
	void *ctx;
};

static const struct {
	const char *name;
	unsigned attr;
} attr_names[] = {
	{ "\\Noselect", FOLDER_NOSELECT }, { "\\NonExistent", FOLDER_NOSELECT },
	{ "\\HasChildren", FOLDER_HAS_CHILDREN }, { "\\Sent", FOLDER_SENT },
	{ "\\Drafts", FOLDER_DRAFTS },		  { "\\Junk", FOLDER_JUNK },
	{ "\\Trash", FOLDER_TRASH },		  { "\\Archive", FOLDER_ARCHIVE },
	{ "\\All", FOLDER_ALL },		  { "\\Flagged", FOLDER_FLAGGED },
};

static unsigned parse_attrs(const struct imap_value *v)
{
	const struct imap_value *items;
	size_t n;
	unsigned attrs = 0;
	if (!imap_value_list(v, &items, &n))
		return 0;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < ARRAY_SIZE(attr_names); k++)
			if (imap_value_atom_eq(&items[i], attr_names[k].name))
				attrs |= attr_names[k].attr;
	return attrs;
}

static struct imap_folder *find(struct imap_folder_list *list, const char *wire)
{
	for (size_t i = 0; i < list->n; i++)
		if (strcmp(list->items[i].wire, wire) == 0)
			return &list->items[i];
	return NULL;
}

/* `* LIST (\HasNoChildren \Sent) "/" "Sent Items"` */
static void on_list(void *ctx, struct imap_response *r)
{
	struct list_req *req = ctx;
	const char *delim = NULL, *wire;
	size_t wire_len;
	if (r->nargs < 3 || !imap_value_nstring(&r->args[1], &delim, NULL) ||
	    !(wire = imap_value_astring(&r->args[2], &wire_len))) {
		log_warn("account=%s server=%s ignoring a malformed LIST response: %s",
			 imap_client_account(req->c), imap_client_name(req->c),
			 imap_response_line(r));
		return;
	}
	struct buf name = { 0 };
	struct err e;
	bool inbox = strcasecmp(wire, "INBOX") == 0;
	if (inbox) {
		buf_puts(&name, "INBOX");
	} else if (imap_utf7_decode(&name, wire, wire_len, &e) < 0) {
		log_warn("account=%s server=%s skipping folder \"%s\": its name is not valid "
			 "modified UTF-7 (%s)",
			 imap_client_account(req->c), imap_client_name(req->c), wire, e.msg);
		buf_free(&name);
		return;
	}
	if (find(&req->list, inbox ? "INBOX" : wire)) {
		buf_free(&name);
		return;
	}
	struct imap_folder_list *l = &req->list;
	l->items = xgrow(l->items, &l->cap, l->n + 1, sizeof(*l->items));
	l->items[l->n++] = (struct imap_folder){
		.name = buf_steal(&name),
		.wire = xstrdup(inbox ? "INBOX" : wire),
		.delim = delim ? delim[0] : 0,
		.attrs = parse_attrs(&r->args[0]),
	};
}

void imap_status_parse(struct imap_folder_status *st, const struct imap_value *items, size_t n)
{
	st->known = true;
	for (size_t i = 0; i + 1 < n; i += 2) {
		uint64_t v;
		if (!imap_value_number(&items[i + 1], &v))
			continue;
		if (imap_value_atom_eq(&items[i], "MESSAGES"))
			st->messages = (uint32_t)v;
		else if (imap_value_atom_eq(&items[i], "UIDNEXT"))
			st->uidnext = (uint32_t)v;
		else if (imap_value_atom_eq(&items[i], "UIDVALIDITY"))
			st->uidvalidity = (uint32_t)v;
		else if (imap_value_atom_eq(&items[i], "UNSEEN"))
			st->unseen = (uint32_t)v;
		else if (imap_value_atom_eq(&items[i], "HIGHESTMODSEQ"))
			st->highestmodseq = v;
	}
}

/* `* STATUS "Sent Items" (MESSAGES 3 UIDNEXT 4)` after its LIST line. */
static void on_status(void *ctx, struct imap_response *r)
{
	struct list_req *req = ctx;
	const struct imap_value *items;
	size_t n;
	const char *wire;
	if (r->nargs < 2 || !(wire = imap_value_astring(&r->args[0], NULL)) ||
	    !imap_value_list(&r->args[1], &items, &n))
		return;
	struct imap_folder *f = find(&req->list, strcasecmp(wire, "INBOX") == 0 ? "INBOX" : wire);
	if (f)
		imap_status_parse(&f->status, items, n);
}

static void on_done(void *ctx, const struct imap_reply *reply)
{
	struct list_req *req = ctx;
	if (reply->status != IMAP_STATUS_OK)
		imap_folder_list_free(&req->list);
	req->cb(req->ctx, &req->list, reply);
	free(req);
}

void imap_list(struct imap_client *c, bool with_status, imap_list_cb cb, void *ctx)
{
	struct list_req *req = xcalloc(1, sizeof(*req));
	req->c = c;
	req->cb = cb;
	req->ctx = ctx;
	struct imap_cmd *cmd = imap_cmd_new(c, "LIST \"\" \"*\"");
	bool extended = imap_client_has(c, CAP_LIST_EXTENDED);
	bool special = extended && imap_client_has(c, CAP_SPECIAL_USE);
	bool status = with_status && imap_client_has(c, CAP_LIST_STATUS);
	if (special || status) {
		imap_cmd_add(cmd, " RETURN (%s%s", special ? "SPECIAL-USE" : "",
			     special && status ? " " : "");
		if (status)
			imap_cmd_add(cmd, "STATUS (MESSAGES UIDNEXT UIDVALIDITY UNSEEN%s)",
				     imap_client_has(c, CAP_CONDSTORE) ? " HIGHESTMODSEQ" : "");
		imap_cmd_add(cmd, ")");
	}
	imap_cmd_claim(cmd, "LIST", on_list);
	imap_cmd_claim(cmd, "STATUS", on_status);
	imap_cmd_send(cmd, on_done, req);
}

void imap_folder_list_free(struct imap_folder_list *list)
{
	for (size_t i = 0; i < list->n; i++) {
		free(list->items[i].name);
		free(list->items[i].wire);
	}
	free(list->items);
	*list = (struct imap_folder_list){ 0 };
}
