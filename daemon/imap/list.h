/* The server's folders: LIST with special-use attributes, and with
 * LIST-STATUS the counters of each folder in the same round trip. Names are
 * decoded from modified UTF-7 to UTF-8. */
#ifndef MF_IMAP_LIST_H
#define MF_IMAP_LIST_H

#include "imap/client.h"

#include <stdint.h>

enum imap_folder_attr {
	FOLDER_NOSELECT = 1 << 0, /* \Noselect or \NonExistent: a name, not a mailbox */
	FOLDER_HAS_CHILDREN = 1 << 1,
	FOLDER_SENT = 1 << 2,
	FOLDER_DRAFTS = 1 << 3,
	FOLDER_JUNK = 1 << 4,
	FOLDER_TRASH = 1 << 5,
	FOLDER_ARCHIVE = 1 << 6,
	FOLDER_ALL = 1 << 7,
	FOLDER_FLAGGED = 1 << 8,
};
#define FOLDER_SPECIAL_USE                                                                          \
	(FOLDER_SENT | FOLDER_DRAFTS | FOLDER_JUNK | FOLDER_TRASH | FOLDER_ARCHIVE | FOLDER_ALL |  \
	 FOLDER_FLAGGED)

struct imap_folder_status {
	bool known; /* a STATUS response came for this folder */
	uint32_t messages, uidnext, uidvalidity, unseen;
	uint64_t highestmodseq; /* 0 when the server has no CONDSTORE */
};

struct imap_folder {
	char *name; /* UTF-8; INBOX always spelled so */
	char *wire; /* as the server writes it (modified UTF-7) */
	char delim; /* hierarchy delimiter, 0 for a flat namespace */
	unsigned attrs;
	struct imap_folder_status status;
};

struct imap_folder_list {
	struct imap_folder *items;
	size_t n, cap;
};

/* list is owned by the callback (free with imap_folder_list_free); on
 * failure it is empty and reply says why. */
typedef void (*imap_list_cb)(void *ctx, struct imap_folder_list *list,
			     const struct imap_reply *reply);

/* Lists every folder; with_status asks for MESSAGES, UIDNEXT, UIDVALIDITY,
 * UNSEEN (and HIGHESTMODSEQ) too where LIST-STATUS (RFC 5819) allows. */
void imap_list(struct imap_client *c, bool with_status, imap_list_cb cb, void *ctx);
void imap_folder_list_free(struct imap_folder_list *list);
/* Fills st from the attributes of a `* STATUS name (...)` response. */
void imap_status_parse(struct imap_folder_status *st, const struct imap_value *items, size_t n);

#endif
