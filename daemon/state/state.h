/* The sync state of one account: what the server and the Maildir looked like
 * at the last sync, per folder and per message, in one SQLite database
 * (STATE_DIR/ACCOUNT.db, WAL, synchronous=FULL). The sync engine merges both
 * listings against it three ways. Pure C on SQLite: no libuv, no network;
 * depends on core/ only. One connection per account, used from one thread.
 *
 * Every function that can fail returns 0 or a negative errno and fills err
 * with a sentence that names the database file:
 *   -EEXIST    a row with that name, path, UID or base name exists already
 *   -ENOENT    no such folder or message row
 *   -EBUSY     another process holds the database (after the busy timeout)
 *   -EUCLEAN   the file is damaged or is not a mailferry state database
 *   -EPROTONOSUPPORT  written by a newer mailferry (a higher schema version)
 *   -ENOSPC, -EACCES, -EIO  the file system said no
 *
 * Durability. Changes are batched by the engine between state_begin and
 * state_commit; a commit is durable when it returns. kill -9 at any instant
 * leaves exactly the last committed transaction. Together with the engine's
 * ordering, each message row carries a state that makes every crash point
 * recoverable in exactly one way (docs/STATE.md has the full table):
 *
 *   STATE_SYNCED       both sides hold the message; uid, base and flags are
 *                      what both sides agreed on. A row is deleted only after
 *                      neither side holds the message any more (expunge or
 *                      unlink first, then delete the row), and its flags are
 *                      updated only after both sides carry them, so a crash in
 *                      between is settled by the next ordinary three-way merge.
 *   STATE_DOWNLOADING  committed after the fetched file was fsynced in tmp/ and
 *                      before its rename into new/ or cur/. Recovery: a file
 *                      with this base name in new/ or cur/ -> state_msg_settle;
 *                      none -> delete the row (the message is fetched again).
 *   STATE_UPLOADING    uid 0, committed before APPEND; since_uid is the
 *                      folder's UIDNEXT at that moment. Recovery: look for the
 *                      copy on the server (UIDs >= since_uid that no row
 *                      holds, same Message-ID, size and body hash): found ->
 *                      settle with its UID; not found and the local file is
 *                      there -> APPEND again; not found and no file -> delete
 *                      the row.
 *   STATE_MOVING       uid 0, a local move being carried out as UID MOVE. The
 *                      original's row moves to the destination folder under
 *                      the moved file's base name (state_msg_move), src_folder
 *                      and src_uid name the server's original. Recovery: look
 *                      for the copy in the destination as for an upload:
 *                      found -> settle (and expunge the original if it is
 *                      still there: an interrupted COPY + EXPUNGE); not found,
 *                      original still there -> move again (or expunge it if
 *                      the local file is gone by now); not found, original gone
 *                      -> continue as an upload (or delete the row if the local
 *                      file is gone).
 * Pending rows (state != STATE_SYNCED) are resolved at start-up, before any
 * folder they name (as folder or as src_folder) is planned. */
#ifndef MF_STATE_STATE_H
#define MF_STATE_STATE_H

#include "core/err.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The schema this build writes; older files are migrated at open. */
#define STATE_SCHEMA_VERSION 2

struct state;

/* The values are stored in the file: never renumber them. */
enum state_msg_state {
	STATE_SYNCED = 0,
	STATE_DOWNLOADING = 1,
	STATE_UPLOADING = 2,
	STATE_MOVING = 3,
};

/* One folder pair. name and path are owned (state_folder_clear frees them). */
struct state_folder {
	int64_t id;	       /* stable for the folder's life in the store, > 0 */
	char *name;	       /* server name, UTF-8 (not modified UTF-7) */
	char *path;	       /* Maildir folder, relative to the account's root */
	uint32_t uidvalidity;  /* 0: not known yet */
	uint64_t highestmodseq; /* 0: unknown, or the server has NOMODSEQ */
	uint32_t uidnext;      /* UIDNEXT seen at the last sync; 0: unknown */
	struct timespec new_mtime, cur_mtime; /* new/ and cur/ at the last complete scan */
	int64_t last_sync;     /* end of the last successful sync, Unix seconds; 0: never */
	char *last_result;     /* one line about the last sync attempt ("" before any) */
	uint32_t messages, unread; /* counts at the last sync, for status */
};

/* One message row. In rows handed out by the state_msg_* readers the pointers
 * point into the owning struct state_msgs and live as long as it does; rows
 * handed in are only read during the call. */
struct state_msg {
	int64_t folder;		   /* the folder the row belongs to */
	const char *base;	   /* Maildir base name: the file name before ":2," */
	const char *msgid;	   /* Message-ID header as found; NULL: none */
	const unsigned char *hash; /* body hash (the engine's choice); NULL: none */
	size_t hash_len;
	uint64_t size;		   /* octets as the server counts them (RFC822.SIZE) */
	uint32_t uid;		   /* 0: not known (uploading, moving, or re-matching) */
	uint32_t flags;		   /* at the last sync, maildir/flags.h bits; opaque here */
	enum state_msg_state state;
	uint32_t since_uid;	   /* uploading/moving: the server copy has UID >= this */
	int64_t src_folder;	   /* moving: the original's folder; 0: gone */
	uint32_t src_uid;	   /* moving: the original's UID there */
};

/* Rows read from the store, with the text they point to. A zeroed struct is
 * an empty list; reading into a list replaces its rows and reuses its memory
 * (keep one list per folder and reload it); state_msgs_free releases it. */
struct state_msgs {
	struct state_msg *v;
	size_t n;
	/* private: the array's capacity and the blocks holding base, msgid and
	 * hash bytes (the first one, and the one being filled) */
	size_t cap;
	struct state_arena *arena_head, *arena;
};

/* Names one row of a folder: by UID when uid is not 0, else by base name. */
struct state_key {
	uint32_t uid;
	const char *base;
};
#define STATE_UID(u) ((struct state_key){ .uid = (u) })
#define STATE_BASE(b) ((struct state_key){ .base = (b) })

/* Opens (creating it when missing) state_dir/account.db. state_dir and its
 * missing parents are created with mode 0700, the file with mode 0600 (a file
 * others could read is tightened to 0600). account must be a plain file name.
 * Fails clearly on a damaged file, on a file that is not a mailferry state
 * database and on one written by a newer version; migrates older ones. */
int state_open(const char *state_dir, const char *account, struct state **out, struct err *err);
/* Closes the database; an open transaction is rolled back. NULL-safe, clears *stp. */
void state_close(struct state **stp);
/* The database file's path, for messages. */
const char *state_path(const struct state *st);

/* One write transaction (BEGIN IMMEDIATE: the lock is taken here, so a busy
 * database shows up at begin, not in the middle of a batch). Transactions do
 * not nest. After a failed commit nothing of the batch is stored: call
 * state_rollback. Writes outside a transaction commit one by one. */
int state_begin(struct state *st, struct err *err);
int state_commit(struct state *st, struct err *err);
/* Discards the open transaction; without one it does nothing. */
int state_rollback(struct state *st, struct err *err);

/* Gets the folder by server name, creating it with path when missing (an
 * existing folder keeps its own path: compare). Fills *out (owned strings). */
int state_folder_get(struct state *st, const char *name, const char *path,
		     struct state_folder *out, struct err *err);
/* All folders, sorted by name. Free with state_folder_list_free. */
int state_folder_list(struct state *st, struct state_folder **out, size_t *n, struct err *err);
void state_folder_list_free(struct state_folder **v, size_t n);
/* Writes f's scalar fields (highestmodseq, uidnext, the mtimes, last_sync,
 * last_result, messages, unread) to folder f->id. Not name, path (see
 * state_folder_rename) or uidvalidity (see state_folder_set_uidvalidity). */
int state_folder_save(struct state *st, const struct state_folder *f, struct err *err);
/* The only way to change UIDVALIDITY. When it differs from the stored value,
 * every UID of the folder named other messages: all its rows get uid 0 (to be
 * re-matched by Message-ID and size, then state_msg_settle or
 * state_msg_delete, in the same transaction), since_uid 0, HIGHESTMODSEQ and
 * UIDNEXT 0, and moving rows whose original was in this folder lose it
 * (src_folder 0). Setting the same value changes nothing. */
int state_folder_set_uidvalidity(struct state *st, int64_t folder, uint32_t uidvalidity,
				 struct err *err);
/* A server-side rename: new server name and local path; rows stay. */
int state_folder_rename(struct state *st, int64_t folder, const char *name, const char *path,
			struct err *err);
/* Deletes the folder and all its rows; moving rows elsewhere whose original
 * was here get src_folder 0. */
int state_folder_delete(struct state *st, int64_t folder, struct err *err);
/* Frees f's strings; the struct may be reused. */
void state_folder_clear(struct state_folder *f);

/* All rows of a folder sorted by UID (uid 0 rows first), replacing *out's
 * content. One query into one array. */
int state_msg_load(struct state *st, int64_t folder, struct state_msgs *out, struct err *err);
/* state_msg_load, but only the rows without a UID carry msgid and hash (NULL
 * in the others, hash_len 0). Identities serve to pair the rows that lost
 * their UID; in a big folder they are about half of the list's memory. */
int state_msg_load_lean(struct state *st, int64_t folder, struct state_msgs *out, struct err *err);
/* All rows of the account whose state is not STATE_SYNCED, by folder. */
int state_msg_pending(struct state *st, struct state_msgs *out, struct err *err);
/* Rows with this base name, in any folder of the account. */
int state_msg_find_base(struct state *st, const char *base, struct state_msgs *out,
			struct err *err);
/* Rows with this Message-ID and size (size 0: any size), in any folder. */
int state_msg_find_msgid(struct state *st, const char *msgid, uint64_t size,
			 struct state_msgs *out, struct err *err);
/* Number of rows of a folder. */
int state_msg_count(struct state *st, int64_t folder, size_t *out, struct err *err);
/* The row with this UID in a list from state_msg_load (binary search); NULL
 * when there is none or uid is 0. */
const struct state_msg *state_msgs_uid(const struct state_msgs *l, uint32_t uid);
/* Frees the rows and their text; *l becomes an empty list. */
void state_msgs_free(struct state_msgs *l);

/* Adds m to folder m->folder. m->state is STATE_SYNCED or STATE_DOWNLOADING
 * with a UID, or STATE_UPLOADING with uid 0 (use state_msg_move for
 * STATE_MOVING); src_* are ignored. -EEXIST when the folder has that UID or
 * base name already. */
int state_msg_add(struct state *st, const struct state_msg *m, struct err *err);
/* Records a move's intent in one step: the row (src_folder, src_uid) leaves
 * its folder and becomes a STATE_MOVING row of dst_folder under the local
 * file's base name, with uid 0 and since_uid (dst_folder's UIDNEXT now). It
 * keeps the original's Message-ID, hash, size and flags: they describe the
 * server copy the move will make, and a flag changed locally meanwhile is
 * then seen as a local change. -ENOENT when there is no such row. */
int state_msg_move(struct state *st, int64_t src_folder, uint32_t src_uid, int64_t dst_folder,
		   const char *base, uint32_t since_uid, struct err *err);
int state_msg_set_flags(struct state *st, int64_t folder, struct state_key k, uint32_t flags,
			struct err *err);
/* The row becomes STATE_SYNCED with this UID (the download is in place, the
 * upload or move has its UID, a re-match found it); since_uid and src_* are
 * cleared. */
int state_msg_settle(struct state *st, int64_t folder, struct state_key k, uint32_t uid,
		     struct err *err);
int state_msg_delete(struct state *st, int64_t folder, struct state_key k, struct err *err);

/* POP3 accounts: one row per message fetched from the server (schema
 * version 2), by the server's unique-id, so nothing is fetched twice. The
 * same two states as a download: STATE_DOWNLOADING is committed after the
 * message was written to tmp/ and before its rename into new/ (recovery: a
 * file with this base name in the INBOX -> state_pop3_settle; none -> delete
 * the row, the message is fetched again); STATE_SYNCED once it is durable
 * in the Maildir. Only then may it be deleted from the server (DELE), and
 * its row goes when the server no longer lists it. docs/STATE.md has the
 * crash table. */
struct state_pop3 {
	char *uidl;	 /* the server's unique-id (UIDL); "sha256:HEX" of the message
			  * for a server without UIDL (docs/POP3.md) */
	char *base;	 /* Maildir base name in the account's INBOX */
	uint64_t size;	 /* octets as the server's LIST counts them */
	int64_t fetched; /* Unix seconds when the row was recorded */
	enum state_msg_state state; /* STATE_DOWNLOADING or STATE_SYNCED */
};

/* All rows, sorted by uidl (strcmp order). A zeroed struct is empty. */
struct state_pop3_list {
	struct state_pop3 *v;
	size_t n;
};

/* Reads every row into *out (its old content is freed). */
int state_pop3_load(struct state *st, struct state_pop3_list *out, struct err *err);
/* The row with this unique-id (binary search), or NULL. */
const struct state_pop3 *state_pop3_find(const struct state_pop3_list *l, const char *uidl);
void state_pop3_list_free(struct state_pop3_list *l);
/* -EEXIST when the unique-id or the base name has a row already. */
int state_pop3_add(struct state *st, const struct state_pop3 *m, struct err *err);
/* STATE_DOWNLOADING -> STATE_SYNCED. -ENOENT when there is no such row. */
int state_pop3_settle(struct state *st, const char *uidl, struct err *err);
/* -ENOENT when there is no such row. */
int state_pop3_delete(struct state *st, const char *uidl, struct err *err);

#endif
