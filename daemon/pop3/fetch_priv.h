/* The inside of a POP3 fetch, shared by fetch.c (the session: listings,
 * downloads, deletions) and store.c (the INBOX Maildir and the state rows:
 * recovery, durable batches, forgetting). Nothing outside daemon/pop3/
 * includes this. */
#ifndef MF_POP3_FETCH_PRIV_H
#define MF_POP3_FETCH_PRIV_H

#include "config/secret.h"
#include "maildir/deliver.h"
#include "pop3/client.h"
#include "pop3/fetch.h"

#include <openssl/evp.h>
#include <stdbool.h>

/* Content ids of a server without UIDL: "sha256:" and 64 hex digits. */
#define FETCH_ID_MAX 72

/* One message the server lists in this session. */
struct fetch_msg {
	struct pop3_fetch *f;
	uint32_t num;       /* the message number of this session */
	uint64_t size;      /* octets, from LIST */
	char *id;           /* its UIDL; without UIDL, the content id once downloaded */
	bool sized, named;  /* LIST and UIDL named it */
	bool known;         /* a settled row holds it: it is safe in the Maildir */
	int64_t fetched_at; /* the row's time */
	bool deleted;       /* DELE answered +OK this session */
};

/* One RETR being answered: its message streams into a delivery. */
struct retr {
	struct pop3_fetch *f;
	struct fetch_msg *m;
	struct maildir_delivery *d; /* created by the first bytes */
	EVP_MD_CTX *sha;            /* the content id, without UIDL */
};

struct download {
	struct maildir_delivery *d;
	struct fetch_msg *m;
};

struct pop3_fetch {
	uv_loop_t *loop;
	struct state *st;             /* borrowed */
	const struct account_conf *a; /* borrowed */
	const struct pop3_conf *pc;
	pop3_fetch_cb done;
	void *ctx;
	struct secret_req *secret; /* while the password is fetched */
	struct pop3_client *c;
	int64_t now;
	uint64_t start;
	uv_timer_t timer; /* ends the fetch from the loop; f is freed when it closes */
	bool ending;      /* the end is scheduled */
	bool lost;        /* the connection failed */
	bool stop;        /* a step failed: no new download starts */

	/* the INBOX */
	char *path;
	struct maildir *md;
	struct state_pop3_list rows;

	/* the server */
	struct fetch_msg *msgs;
	uint32_t count;
	bool uidl; /* the server answered UIDL */

	/* downloads */
	uint32_t next; /* the next message to consider for RETR */
	unsigned inflight;
	struct maildir_batch *batch;
	struct download *dl;
	size_t ndl, capdl;
	uint64_t batch_bytes;

	unsigned deletes; /* DELE commands not answered yet */
	struct pop3_fetch_result res;
};

/* store.c */
/* Opens the INBOX Maildir, removes what a killed fetch left in tmp/, loads
 * the rows and settles or drops those a crash left downloading. */
int pop3_store_open(struct pop3_fetch *f, struct err *e);
/* A finished download joins the batch; the batch is made durable when it is
 * full. Returns 0 or the failure (f->res is not touched). */
int pop3_store_add(struct pop3_fetch *f, struct maildir_delivery *d, struct fetch_msg *m,
		   struct err *e);
/* Makes the batch durable: rows as downloading, files fsynced and renamed,
 * rows settled (a file that failed loses its row). */
int pop3_store_commit(struct pop3_fetch *f, struct err *e);
/* Whether a content id was fetched already (a server without UIDL showing a
 * message again after an interrupted session, or twice in one session). */
bool pop3_store_has(struct pop3_fetch *f, const char *id);
/* The ids of the listed messages (optionally not those deleted), sorted
 * (strcmp); *n of them. The caller frees the array, not the strings. */
const char **pop3_store_sorted_ids(const struct pop3_fetch *f, bool skip_deleted, size_t *n);
/* Forgets rows the server no longer lists (UIDL servers), before fetching. */
int pop3_store_prune(struct pop3_fetch *f, struct err *e);
/* Forgets the rows of the messages the server removed at QUIT. */
int pop3_store_forget_deleted(struct pop3_fetch *f, struct err *e);
/* The INBOX folder row, for mailferryctl status: when, how, how many. */
void pop3_store_record(struct pop3_fetch *f);
/* Aborts what is not durable and closes the Maildir. */
void pop3_store_close(struct pop3_fetch *f);

/* fetch.c */
/* Notes a failure: logged here, the first one kept for the result. */
void pop3_fetch_failed(struct pop3_fetch *f, const struct err *err);

#endif
