/* The three-way merge, case by case: each rule of docs/SYNC.md that the
 * planner decides, and the conflicts. */
#include "check.h"
#include "maildir/flags.h"
#include "sync/plan.h"

enum { S = FLAG_SEEN, F = FLAG_FLAGGED, R = FLAG_REPLIED, P = FLAG_PASSED, T = FLAG_TRASHED };

static struct plan_input base_input(void)
{
	return (struct plan_input){ .remote_full = true,
				    .server_flags = FLAG_ALL,
				    .max_delete_share = 0.5,
				    .min_mass_delete = 20 };
}

/* How many actions of kind op the plan holds. */
static size_t count(const struct plan *p, enum plan_op op)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += p->v[i].op == op;
	return n;
}

static const struct plan_action *find(const struct plan *p, enum plan_op op)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].op == op)
			return &p->v[i];
	return NULL;
}

static void run(const struct plan_input *in, struct plan *p)
{
	*p = (struct plan){ 0 };
	plan_folder(in, p);
}

static void test_merge_flags(void)
{
	CHECK_INT(plan_merge_flags(S, S, S), S);
	CHECK_INT(plan_merge_flags(S, S | F, S), S | F);    /* local added */
	CHECK_INT(plan_merge_flags(S, 0, S), 0);	     /* local removed */
	CHECK_INT(plan_merge_flags(S, S, S | R), S | R);     /* remote added */
	CHECK_INT(plan_merge_flags(S, S | F, 0), F);	     /* each side its own flag */
	CHECK_INT(plan_merge_flags(0, F, F), F);	     /* same change on both */
	CHECK_INT(plan_merge_flags(S | F, S, S | F | R), S | R);
}

static void test_nothing_changed(void)
{
	struct plan_row rows[] = { { 1, "a", S }, { 2, "b", 0 } };
	struct plan_local local[] = { { "a", S }, { "b", 0 } };
	struct plan_remote remote[] = { { 1, S }, { 2, 0 } };
	struct plan_input in = base_input();
	in.rows = rows, in.nrows = 2, in.local = local, in.nlocal = 2;
	in.remote = remote, in.nremote = 2;
	struct plan p;
	run(&in, &p);
	CHECK_INT(p.n, 0);
	plan_free(&p);
}

static void test_new_each_side(void)
{
	struct plan_local local[] = { { "new-local", F } };
	struct plan_remote remote[] = { { 7, S } };
	struct plan_input in = base_input();
	in.local = local, in.nlocal = 1, in.remote = remote, in.nremote = 1;
	struct plan p;
	run(&in, &p);
	CHECK_INT(p.n, 2);
	const struct plan_action *up = find(&p, OP_UPLOAD), *down = find(&p, OP_DOWNLOAD);
	CHECK(up && up->local == 0 && up->flags == F);
	CHECK(down && down->uid == 7 && down->flags == S);
	plan_free(&p);
}

static void test_flags_both_ways(void)
{
	/* a: flagged locally; b: answered on the server; c: both changed */
	struct plan_row rows[] = { { 1, "a", S }, { 2, "b", S }, { 3, "c", S } };
	struct plan_local local[] = { { "a", S | F }, { "b", S }, { "c", 0 } };
	struct plan_remote remote[] = { { 1, S }, { 2, S | R }, { 3, S | F } };
	struct plan_input in = base_input();
	in.rows = rows, in.nrows = 3, in.local = local, in.nlocal = 3;
	in.remote = remote, in.nremote = 3;
	struct plan p;
	run(&in, &p);
	CHECK_INT(count(&p, OP_PUSH_FLAGS), 2);
	CHECK_INT(count(&p, OP_LOCAL_FLAGS), 2);
	CHECK_INT(count(&p, OP_SAVE_FLAGS), 3);
	for (size_t i = 0; i < p.n; i++) {
		const struct plan_action *a = &p.v[i];
		if (a->uid == 1 && a->op == OP_PUSH_FLAGS)
			CHECK(a->add == F && a->remove == 0);
		if (a->uid == 2)
			CHECK(a->op != OP_PUSH_FLAGS && a->flags == (S | R));
		if (a->uid == 3 && a->op == OP_PUSH_FLAGS)
			CHECK(a->add == 0 && a->remove == S); /* unread locally */
		if (a->uid == 3 && a->op == OP_LOCAL_FLAGS)
			CHECK_INT(a->flags, F);
	}
	plan_free(&p);
}

static void test_same_change_on_both_sides(void)
{
	struct plan_row rows[] = { { 1, "a", 0 } };
	struct plan_local local[] = { { "a", S } };
	struct plan_remote remote[] = { { 1, S } };
	struct plan_input in = base_input();
	in.rows = rows, in.nrows = 1, in.local = local, in.nlocal = 1;
	in.remote = remote, in.nremote = 1;
	struct plan p;
	run(&in, &p);
	CHECK_INT(p.n, 1);
	CHECK(p.v[0].op == OP_SAVE_FLAGS && p.v[0].flags == S);
	plan_free(&p);
}

static void test_deletes_win_over_flags(void)
{
	/* a: deleted locally, flagged on the server; b: deleted on the server,
	 * flagged locally; c: gone from both */
	struct plan_row rows[] = { { 1, "a", 0 }, { 2, "b", 0 }, { 3, "c", 0 } };
	struct plan_local local[] = { { "b", F } };
	struct plan_remote remote[] = { { 1, F } };
	struct plan_input in = base_input();
	in.rows = rows, in.nrows = 3, in.local = local, in.nlocal = 1;
	in.remote = remote, in.nremote = 1;
	struct plan p;
	run(&in, &p);
	CHECK_INT(p.n, 3);
	const struct plan_action *dr = find(&p, OP_DELETE_REMOTE), *dl = find(&p, OP_DELETE_LOCAL);
	CHECK(dr && dr->uid == 1);
	CHECK(dl && dl->uid == 2 && dl->row == 1);
	CHECK(find(&p, OP_FORGET) && find(&p, OP_FORGET)->row == 2);
	/* The runner deletes the row by its UID or base name (apply.c key_of). */
	CHECK(find(&p, OP_FORGET)->uid == 3 && find(&p, OP_FORGET)->base == rows[2].base);
	CHECK_INT(count(&p, OP_PUSH_FLAGS) + count(&p, OP_LOCAL_FLAGS), 0);
	plan_free(&p);
}

static void test_delta_and_unchanged_local(void)
{
	/* QRESYNC delta: 2 vanished, 3 got \Seen, 9 is new; 1 and 4 untouched */
	struct plan_row rows[] = { { 1, "a", 0 }, { 2, "b", 0 }, { 3, "c", 0 }, { 4, "d", F } };
	struct plan_remote remote[] = { { 3, S }, { 9, 0 } };
	uint32_t vanished[] = { 2 };
	struct plan_input in = base_input();
	in.rows = rows, in.nrows = 4, in.local_unchanged = true;
	in.remote = remote, in.nremote = 2, in.remote_full = false;
	in.vanished = vanished, in.nvanished = 1;
	struct plan p;
	run(&in, &p);
	CHECK_INT(p.n, 4);
	CHECK(find(&p, OP_DELETE_LOCAL) && find(&p, OP_DELETE_LOCAL)->uid == 2);
	CHECK(find(&p, OP_LOCAL_FLAGS) && find(&p, OP_LOCAL_FLAGS)->uid == 3);
	CHECK(find(&p, OP_SAVE_FLAGS) && find(&p, OP_SAVE_FLAGS)->uid == 3);
	CHECK(find(&p, OP_DOWNLOAD) && find(&p, OP_DOWNLOAD)->uid == 9);
	plan_free(&p);
}

static void test_new_on_both_sides_paired(void)
{
	struct plan_local local[] = { { "x", F, { "<m1@x>", 100 } }, { "y", 0, { "<m2@x>", 50 } } };
	struct plan_remote remote[] = { { 5, S, { "<m1@x>", 100 } }, { 6, 0, { "<m2@x>", 51 } } };
	struct plan_input in = base_input();
	in.local = local, in.nlocal = 2, in.remote = remote, in.nremote = 2;
	struct plan p;
	run(&in, &p);
	const struct plan_action *pair = find(&p, OP_PAIR);
	CHECK(pair && pair->uid == 5 && pair->local == 0 && pair->flags == 0);
	CHECK_INT(count(&p, OP_PAIR), 1);
	/* the union of both sides' flags ends up on both */
	const struct plan_action *push = find(&p, OP_PUSH_FLAGS), *loc = find(&p, OP_LOCAL_FLAGS);
	CHECK(push && push->uid == 5 && push->add == F);
	CHECK(loc && loc->flags == (S | F));
	/* a different size is a different message: both are copied */
	CHECK(find(&p, OP_UPLOAD) && find(&p, OP_UPLOAD)->local == 1);
	CHECK(find(&p, OP_DOWNLOAD) && find(&p, OP_DOWNLOAD)->uid == 6);
	plan_free(&p);
}

static void test_no_msgid_paired_by_hash(void)
{
	/* without a Message-ID, size and body hash say who is who: a row that
	 * lost its UID finds its server copy, a new file finds its twin, and a
	 * server message without a hash (not fetched) pairs with nothing */
	static const unsigned char h1[PLAN_HASH_LEN] = { 1 }, h2[PLAN_HASH_LEN] = { 2 };
	struct plan_row rows[] = { { 0, "a", S, { NULL, 10, h1 } } };
	struct plan_local local[] = { { "a", S }, { "n", F, { "", 10, h2 } } };
	struct plan_remote remote[] = { { 7, S, { "", 10, h2 } },
					{ 8, R, { "", 10, h1 } },
					{ 9, 0, { "", 10, NULL } } };
	struct plan_input in = base_input();
	in.rows = rows, in.nrows = 1, in.local = local, in.nlocal = 2;
	in.remote = remote, in.nremote = 3;
	struct plan p;
	run(&in, &p);
	CHECK_INT(count(&p, OP_PAIR), 2);
	for (size_t i = 0; i < p.n; i++)
		if (p.v[i].op == OP_PAIR)
			CHECK(p.v[i].row == 0 ? p.v[i].uid == 8 : p.v[i].local == 1 && p.v[i].uid == 7);
	CHECK_INT(count(&p, OP_UPLOAD), 0);
	CHECK(find(&p, OP_DOWNLOAD) && find(&p, OP_DOWNLOAD)->uid == 9);
	CHECK_INT(count(&p, OP_DOWNLOAD), 1);
	plan_free(&p);
}

static void test_rematch_after_uidvalidity_change(void)
{
	/* rows lost their UIDs: a is still on the server under a new UID, b is
	 * not (uploaded again), c was deleted locally meanwhile and is not on the
	 * server either (forgotten); 30 is new on the server */
	struct plan_row rows[] = { { 0, "a", S, { "<a@x>", 10 } },
				   { 0, "b", F, { "<b@x>", 20 } },
				   { 0, "c", 0, { "<c@x>", 30 } } };
	struct plan_local local[] = { { "a", S }, { "b", F } };
	struct plan_remote remote[] = { { 10, S, { "<a@x>", 10 } }, { 30, 0, { "<z@x>", 5 } } };
	struct plan_input in = base_input();
	in.rows = rows, in.nrows = 3, in.local = local, in.nlocal = 2;
	in.remote = remote, in.nremote = 2;
	struct plan p;
	run(&in, &p);
	const struct plan_action *pair = find(&p, OP_PAIR);
	CHECK(pair && pair->row == 0 && pair->uid == 10);
	CHECK(find(&p, OP_UPLOAD) && find(&p, OP_UPLOAD)->row == 1);
	CHECK(find(&p, OP_FORGET) && find(&p, OP_FORGET)->row == 2);
	CHECK(find(&p, OP_DOWNLOAD) && find(&p, OP_DOWNLOAD)->uid == 30);
	CHECK_INT(count(&p, OP_DELETE_LOCAL) + count(&p, OP_DELETE_REMOTE), 0);
	CHECK_INT(p.n, 4);
	plan_free(&p);
}

static void test_rematched_row_without_file_deletes_its_copy(void)
{
	/* An upload cut off after the server stored it (row a, UID 0, its copy
	 * is 40), whose file was deleted before the next sync; b, an ordinary
	 * delete in the same sync. Both copies go, each by its UID: with UID 0
	 * the copy of a stayed on the server while its row went. Row a is not
	 * settled first (test_crash: cut off after its \Deleted, the settled
	 * row was taken for a message moved elsewhere, \Deleted and all). */
	struct plan_row rows[] = { { 0, "a", 0, { "<a@x>", 10 } }, { 7, "b", 0 } };
	struct plan_remote remote[] = { { 7, 0 }, { 40, 0, { "<a@x>", 10 } } };
	struct plan_input in = base_input();
	in.rows = rows, in.nrows = 2, in.remote = remote, in.nremote = 2;
	struct plan p;
	run(&in, &p);
	CHECK_INT(count(&p, OP_PAIR), 0);
	CHECK_INT(count(&p, OP_DELETE_REMOTE), 2);
	for (size_t i = 0; i < p.n; i++)
		if (p.v[i].op == OP_DELETE_REMOTE)
			CHECK(p.v[i].uid == (p.v[i].row == 0 ? 40u : 7u) &&
			      p.v[i].unsettled == (p.v[i].row == 0));
	CHECK_INT(count(&p, OP_DOWNLOAD) + count(&p, OP_UPLOAD), 0);
	plan_free(&p);
}

static void test_mass_delete_guard(void)
{
	enum { N = 30 };
	struct plan_row rows[N];
	struct plan_remote remote[N];
	struct plan_local local[N];
	char names[N][8];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "m%02d", i);
		rows[i] = (struct plan_row){ (uint32_t)i + 1, names[i], 0 };
		remote[i] = (struct plan_remote){ (uint32_t)i + 1, 0 };
		local[i] = (struct plan_local){ names[i], 0 };
	}
	struct plan_input in = base_input();
	in.rows = rows, in.nrows = N, in.remote = remote, in.nremote = N;
	in.local = NULL, in.nlocal = 0; /* an emptied Maildir */
	struct plan p;
	run(&in, &p);
	CHECK_INT(count(&p, OP_DELETE_REMOTE), 0);
	CHECK_INT(p.guarded_remote, N);
	plan_free(&p);

	in.allow_mass_delete = true;
	run(&in, &p);
	CHECK_INT(count(&p, OP_DELETE_REMOTE), N);
	CHECK_INT(p.guarded_remote, 0);
	plan_free(&p);

	/* the server lost 16 of 30: guarded on the local side */
	in.allow_mass_delete = false;
	in.local = local, in.nlocal = N, in.nremote = 14;
	run(&in, &p);
	CHECK_INT(count(&p, OP_DELETE_LOCAL), 0);
	CHECK_INT(p.guarded_local, 16);
	plan_free(&p);

	/* half or less is not a mass deletion; nor is any share of a small folder */
	in.nremote = 15;
	run(&in, &p);
	CHECK_INT(count(&p, OP_DELETE_LOCAL), 15);
	CHECK_INT(p.guarded_local, 0);
	plan_free(&p);
	in.nrows = in.nlocal = 20, in.nremote = 0;
	run(&in, &p);
	CHECK_INT(count(&p, OP_DELETE_LOCAL), 20);
	plan_free(&p);
}

static void test_flags_the_server_cannot_store(void)
{
	struct plan_row rows[] = { { 1, "a", S } };
	struct plan_local local[] = { { "a", S | P } };
	struct plan_remote remote[] = { { 1, S } };
	struct plan_input in = base_input();
	in.server_flags = FLAG_ALL & ~(unsigned)P;
	in.rows = rows, in.nrows = 1, in.local = local, in.nlocal = 1;
	in.remote = remote, in.nremote = 1;
	struct plan p;
	run(&in, &p);
	CHECK_INT(count(&p, OP_PUSH_FLAGS), 0);
	CHECK(find(&p, OP_SAVE_FLAGS) && find(&p, OP_SAVE_FLAGS)->flags == (S | P));
	plan_free(&p);
	/* once saved, the server's missing P is not a removal */
	rows[0].flags = S | P;
	run(&in, &p);
	CHECK_INT(p.n, 0);
	plan_free(&p);
}

static void test_twin_files_are_one_message(void)
{
	struct plan_row rows[] = { { 1, "a", S } };
	struct plan_local local[] = { { "a", S }, { "a", S | F }, { "n", 0 }, { "n", S } };
	struct plan_remote remote[] = { { 1, S } };
	struct plan_input in = base_input();
	in.rows = rows, in.nrows = 1, in.local = local, in.nlocal = 4;
	in.remote = remote, in.nremote = 1;
	struct plan p;
	run(&in, &p);
	CHECK_INT(count(&p, OP_UPLOAD), 1);
	plan_free(&p);
}

int main(void)
{
	RUN(test_merge_flags);
	RUN(test_nothing_changed);
	RUN(test_new_each_side);
	RUN(test_flags_both_ways);
	RUN(test_same_change_on_both_sides);
	RUN(test_deletes_win_over_flags);
	RUN(test_delta_and_unchanged_local);
	RUN(test_new_on_both_sides_paired);
	RUN(test_no_msgid_paired_by_hash);
	RUN(test_rematch_after_uidvalidity_change);
	RUN(test_rematched_row_without_file_deletes_its_copy);
	RUN(test_mass_delete_guard);
	RUN(test_flags_the_server_cannot_store);
	RUN(test_twin_files_are_one_message);
	CHECK_DONE();
}
