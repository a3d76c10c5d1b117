/* Folder rows: one per folder pair (server folder <-> Maildir folder). */
#include "state/internal.h"

#include "core/xalloc.h"

#include <errno.h>
#include <stdlib.h>

static char *column_dup(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);
	return xstrdup(t ? t : "");
}

/* Reads a row of FOLDER_COLUMNS. */
static void read_folder(sqlite3_stmt *s, struct state_folder *f)
{
	f->id = sqlite3_column_int64(s, 0);
	f->name = column_dup(s, 1);
	f->path = column_dup(s, 2);
	f->uidvalidity = (uint32_t)sqlite3_column_int64(s, 3);
	f->highestmodseq = (uint64_t)sqlite3_column_int64(s, 4);
	f->uidnext = (uint32_t)sqlite3_column_int64(s, 5);
	f->new_mtime.tv_sec = sqlite3_column_int64(s, 6);
	f->new_mtime.tv_nsec = sqlite3_column_int64(s, 7);
	f->cur_mtime.tv_sec = sqlite3_column_int64(s, 8);
	f->cur_mtime.tv_nsec = sqlite3_column_int64(s, 9);
	f->last_sync = sqlite3_column_int64(s, 10);
	f->last_result = column_dup(s, 11);
	f->messages = (uint32_t)sqlite3_column_int64(s, 12);
	f->unread = (uint32_t)sqlite3_column_int64(s, 13);
}

/* 0 and *out filled, -ENOENT without an error message, or an error. */
static int find_folder(struct state *st, const char *name, struct state_folder *out,
		       struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, SQL_FOLDER_GET, err);
	if (!s)
		return -EIO;
	db_bind_text(s, 1, name);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		read_folder(s, out);
	else if (rc != SQLITE_DONE)
		return db_fail(st, s, rc, "reading a folder", err);
	db_done(s);
	return rc == SQLITE_ROW ? 0 : -ENOENT;
}

int state_folder_get(struct state *st, const char *name, const char *path,
		     struct state_folder *out, struct err *err)
{
	*out = (struct state_folder){ 0 };
	int rc = find_folder(st, name, out, err);
	if (rc != -ENOENT)
		return rc;
	sqlite3_stmt *s = db_stmt(st, SQL_FOLDER_ADD, err);
	if (!s)
		return -EIO;
	db_bind_text(s, 1, name);
	db_bind_text(s, 2, path);
	rc = db_run(st, s, "adding a folder", err);
	if (rc == -EEXIST)
		err_prefix(err, "folder \"%s\" at \"%s\"", name, path);
	if (rc)
		return rc;
	*out = (struct state_folder){ .id = sqlite3_last_insert_rowid(st->db),
				      .name = xstrdup(name),
				      .path = xstrdup(path),
				      .last_result = xstrdup("") };
	return 0;
}

int state_folder_list(struct state *st, struct state_folder **out, size_t *n, struct err *err)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *s = db_stmt(st, SQL_FOLDER_LIST, err);
	if (!s)
		return -EIO;
	size_t cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		*out = xgrow(*out, &cap, *n + 1, sizeof(**out));
		read_folder(s, &(*out)[(*n)++]);
	}
	if (rc != SQLITE_DONE) {
		state_folder_list_free(out, *n);
		*n = 0;
		return db_fail(st, s, rc, "listing folders", err);
	}
	db_done(s);
	return 0;
}

void state_folder_list_free(struct state_folder **v, size_t n)
{
	for (size_t i = 0; *v && i < n; i++)
		state_folder_clear(&(*v)[i]);
	xfree(v);
}

void state_folder_clear(struct state_folder *f)
{
	xfree(&f->name);
	xfree(&f->path);
	xfree(&f->last_result);
}

static int no_folder(struct state *st, int64_t folder, const char *what, struct err *err)
{
	return err_set(err, -ENOENT, ERR_LOCAL, "%s: %s: no folder %lld", st->path, what,
		       (long long)folder);
}

/* Runs s (already bound) and turns "no row changed" into -ENOENT. */
static int run_on_folder(struct state *st, sqlite3_stmt *s, int64_t folder, const char *what,
			 struct err *err)
{
	int rc = db_run(st, s, what, err);
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		return no_folder(st, folder, what, err);
	return rc;
}

int state_folder_save(struct state *st, const struct state_folder *f, struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, SQL_FOLDER_SAVE, err);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, f->id);
	sqlite3_bind_int64(s, 2, (int64_t)f->highestmodseq);
	sqlite3_bind_int64(s, 3, f->uidnext);
	sqlite3_bind_int64(s, 4, f->new_mtime.tv_sec);
	sqlite3_bind_int64(s, 5, f->new_mtime.tv_nsec);
	sqlite3_bind_int64(s, 6, f->cur_mtime.tv_sec);
	sqlite3_bind_int64(s, 7, f->cur_mtime.tv_nsec);
	sqlite3_bind_int64(s, 8, f->last_sync);
	db_bind_text(s, 9, f->last_result ? f->last_result : "");
	sqlite3_bind_int64(s, 10, f->messages);
	sqlite3_bind_int64(s, 11, f->unread);
	return run_on_folder(st, s, f->id, "saving a folder", err);
}

static int get_uidvalidity(struct state *st, int64_t folder, uint32_t *out, struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, SQL_FOLDER_UIDVALIDITY_GET, err);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, folder);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		db_done(s);
		return no_folder(st, folder, "reading UIDVALIDITY", err);
	}
	if (rc != SQLITE_ROW)
		return db_fail(st, s, rc, "reading UIDVALIDITY", err);
	*out = (uint32_t)sqlite3_column_int64(s, 0);
	db_done(s);
	return 0;
}

/* Runs a cached statement whose only parameter is the folder's id. */
static int run_folder_stmt(struct state *st, enum stmt_id id, int64_t folder, const char *what,
			   struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, id, err);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, folder);
	return db_run(st, s, what, err);
}

static int forget_uids(struct state *st, int64_t folder, uint32_t uidvalidity, struct err *err)
{
	const char *what = "changing UIDVALIDITY";
	int rc = run_folder_stmt(st, SQL_FOLDER_FORGET_UIDS, folder, what, err);
	if (rc == 0)
		rc = run_folder_stmt(st, SQL_FOLDER_FORGET_SOURCES, folder, what, err);
	if (rc)
		return rc;
	sqlite3_stmt *s = db_stmt(st, SQL_FOLDER_UIDVALIDITY_SET, err);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, folder);
	sqlite3_bind_int64(s, 2, uidvalidity);
	return db_run(st, s, what, err);
}

int state_folder_set_uidvalidity(struct state *st, int64_t folder, uint32_t uidvalidity,
				 struct err *err)
{
	uint32_t old = 0;
	int rc = get_uidvalidity(st, folder, &old, err);
	if (rc || old == uidvalidity)
		return rc;
	rc = db_savepoint(st, err);
	if (rc)
		return rc;
	return db_release(st, forget_uids(st, folder, uidvalidity, err), err);
}

int state_folder_rename(struct state *st, int64_t folder, const char *name, const char *path,
			struct err *err)
{
	sqlite3_stmt *s = db_stmt(st, SQL_FOLDER_RENAME, err);
	if (!s)
		return -EIO;
	sqlite3_bind_int64(s, 1, folder);
	db_bind_text(s, 2, name);
	db_bind_text(s, 3, path);
	int rc = run_on_folder(st, s, folder, "renaming a folder", err);
	if (rc == -EEXIST)
		err_prefix(err, "folder \"%s\" at \"%s\"", name, path);
	return rc;
}

int state_folder_delete(struct state *st, int64_t folder, struct err *err)
{
	int rc = db_savepoint(st, err);
	if (rc)
		return rc;
	const char *what = "deleting a folder";
	/* Moving rows elsewhere lose their original as a whole (src_uid too). */
	rc = run_folder_stmt(st, SQL_FOLDER_FORGET_SOURCES, folder, what, err);
	if (rc == 0)
		rc = run_folder_stmt(st, SQL_FOLDER_DELETE, folder, what, err);
	/* Rows removed by ON DELETE CASCADE do not count as changes here. */
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = no_folder(st, folder, what, err);
	return db_release(st, rc, err);
}
