/* The three-way merge of one folder: what the state says both sides held at
 * the last sync, what the Maildir holds now and what the server holds now,
 * turned into a list of actions. Pure: no I/O, no clock; the runner
 * (sync/folder.c) gathers the inputs and carries the actions out.
 *
 * Rules (docs/SYNC.md says them for users, each with its test):
 *  - new on one side: copied to the other; new on both sides with the same
 *    Message-ID and size (without a Message-ID: size and body hash):
 *    paired, not copied (also how rows with an unknown UID are re-matched
 *    after a UIDVALIDITY change or an interrupted upload);
 *  - flags: merged per flag, each side's change wins over no change;
 *  - gone from one side: deleted from the other (a delete wins over a flag
 *    change); gone from both: forgotten;
 *  - a sync that would delete more than max_delete_share of a folder of more
 *    than min_mass_delete messages on one side deletes nothing on that side
 *    (the mass-deletion guard) unless allowed.
 * Flags are maildir/flags.h bits. */
#ifndef MF_SYNC_PLAN_H
#define MF_SYNC_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The length of a body hash (maildir/digest.h's). */
#define PLAN_HASH_LEN 32

/* Who a message is, for pairing: Message-ID and size as the server counts
 * it (CRLF line ends); for a message without a Message-ID, size and a hash
 * of its body. */
struct plan_ident {
	const char *msgid;	   /* NULL or "": none */
	uint64_t size;
	const unsigned char *hash; /* PLAN_HASH_LEN bytes, or NULL; used without msgid */
};

struct plan_row { /* the state at the last sync */
	uint32_t uid;	  /* 0: not known, to be re-matched */
	const char *base; /* Maildir base name */
	unsigned flags;
	struct plan_ident id;
};

struct plan_local { /* a file in the Maildir now */
	const char *base;
	unsigned flags;
	struct plan_ident id; /* needed only for files no row knows */
};

struct plan_remote { /* a message on the server now */
	uint32_t uid;
	unsigned flags;
	struct plan_ident id; /* needed only for UIDs no row knows */
};

struct plan_input {
	const struct plan_row *rows; /* sorted by uid, uid 0 first */
	size_t nrows;
	/* Sorted by base. With local_unchanged the Maildir is known to be as the
	 * rows say (its directories did not change) and local is ignored. */
	const struct plan_local *local;
	size_t nlocal;
	bool local_unchanged;
	/* Sorted by uid. remote_full: every message on the server. Otherwise a
	 * delta: the messages whose flags changed and the new ones, with the
	 * expunged UIDs in vanished (sorted); rows not named are unchanged. */
	const struct plan_remote *remote;
	size_t nremote;
	bool remote_full;
	const uint32_t *vanished;
	size_t nvanished;
	unsigned server_flags; /* the flags the server can store (PERMANENTFLAGS) */
	double max_delete_share;
	unsigned min_mass_delete;
	bool allow_mass_delete;
};

enum plan_op {
	OP_DOWNLOAD,	  /* remote: fetch into the Maildir with flags */
	OP_UPLOAD,	  /* local (or row with local): APPEND with flags */
	OP_PAIR,	  /* row or local + remote are one message: record uid */
	OP_PUSH_FLAGS,	  /* row: set add, clear remove on the server */
	OP_LOCAL_FLAGS,	  /* row: rename the file to carry flags */
	OP_SAVE_FLAGS,	  /* row: the state's flags become flags */
	OP_DELETE_LOCAL,  /* row: gone from the server; remove the file, forget */
	OP_DELETE_REMOTE, /* row: gone from the Maildir; remove on the server, forget */
	OP_FORGET,	  /* row: gone from both sides */
};

#define PLAN_NONE ((size_t)-1)

struct plan_action {
	enum plan_op op;
	size_t row, local, remote; /* indexes into the input, or PLAN_NONE */
	uint32_t uid;		   /* the server message concerned, 0 if none */
	unsigned flags;		   /* the flags both sides end up with */
	unsigned add, remove;	   /* OP_PUSH_FLAGS */
	const char *base;	   /* the local file concerned, NULL if none */
	bool unsettled;		   /* the row has no UID of its own: found by base */
};

struct plan {
	struct plan_action *v;
	size_t n, cap;
	/* Deletes held back by the mass-deletion guard, per side. */
	size_t guarded_local, guarded_remote;
};

/* Fills out (which must be zeroed or plan_free'd) from in. Actions come in
 * the order the runner should carry them out per kind; the runner may group
 * kinds (all downloads in one pipelined batch). */
void plan_folder(const struct plan_input *in, struct plan *out);
void plan_free(struct plan *p);
/* Per-flag three-way merge: each side's change from base wins over no change. */
unsigned plan_merge_flags(unsigned base, unsigned local, unsigned remote);

#endif
