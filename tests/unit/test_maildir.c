/* daemon/maildir: flags, names, folder paths and the local tree, scanning,
 * durable delivery (50 MB streamed, a full disk), flag changes under a
 * reader's feet, the body hash that survives neomutt's rewrite, and reading
 * for uploads. Everything runs in temporary directories; the full-disk test
 * mounts a small tmpfs (we run as root). */
#include "check.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "maildir/deliver.h"
#include "maildir/digest.h"
#include "maildir/flags.h"
#include "maildir/folder.h"
#include "maildir/msgfile.h"
#include "maildir/name.h"
#include "maildir/path.h"
#include "maildir/scan.h"
#include "maildir/tree.h"
#include "maildir/update.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmproot[64];

/* ---- helpers ---- */

static char *tpath(const char *rel)
{
	return xasprintf("%s/%s", tmproot, rel);
}

static void put_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs(content, f);
	fclose(f);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Entries of a directory, "." and ".." aside; -1 when it cannot be read. */
static int count_entries(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static long maxrss_kib(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* A fresh Maildir at tmproot/rel, opened with label. */
static struct maildir *fresh_maildir(const char *rel, const char *label)
{
	char *p = tpath(rel);
	struct err e = {0};
	struct maildir *m = NULL;
	CHECK_INT(maildir_ensure(p, &e), 0);
	CHECK_INT(maildir_open(&m, p, label, &e), 0);
	free(p);
	return m;
}

/* Delivers content in one batch; returns the final file name (owned). */
static char *deliver_text(struct maildir *m, const char *content, unsigned flags,
                          const char *unknown, bool *in_new)
{
	struct maildir_batch *b = maildir_batch_new();
	struct maildir_delivery *d;
	struct err e = {0};
	CHECK_INT(maildir_batch_add(b, m, &d, &e), 0);
	CHECK_INT(maildir_delivery_write(d, content, strlen(content), &e), 0);
	CHECK_INT(maildir_delivery_finish(d, flags, unknown, NULL, &e), 0);
	CHECK_INT(maildir_batch_commit(b, &e), 0);
	CHECK_INT(maildir_delivery_status(d, NULL), 0);
	char *file = xstrdup(maildir_delivery_file(d));
	if (in_new)
		*in_new = maildir_delivery_in_new(d);
	maildir_batch_free(&b);
	return file;
}

/* A deterministic byte stream (xorshift64*), text-like so the digest sees
 * lines and white space too. */
static void fill(uint64_t *state, unsigned char *p, size_t n)
{
	static const char alphabet[] = "abcdefghij klmnop\nqrstuvwxyz \t0123456789\r\n";
	for (size_t i = 0; i < n; i++) {
		uint64_t x = *state;
		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		*state = x;
		p[i] = (unsigned char)
		    alphabet[(x * 2685821657736338717ULL >> 58) % (sizeof(alphabet) - 1)];
	}
}

/* ---- flags ---- */

static void test_flags_maildir(void)
{
	static const struct {
		unsigned bit;
		char letter;
		const char *imap;
	} all[] = {
	    {FLAG_DRAFT, 'D', "\\Draft"},     {FLAG_FLAGGED, 'F', "\\Flagged"},
	    {FLAG_PASSED, 'P', "$Forwarded"}, {FLAG_REPLIED, 'R', "\\Answered"},
	    {FLAG_SEEN, 'S', "\\Seen"},       {FLAG_TRASHED, 'T', "\\Deleted"},
	};
	char out[FLAGS_INFO_MAX], unknown[FLAGS_INFO_MAX];
	unsigned flags;
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		char one[2] = {all[i].letter, 0};
		CHECK_INT(flags_from_maildir(one, 1, &flags, unknown), 0);
		CHECK_INT(flags, all[i].bit);
		CHECK_STR(unknown, "");
		CHECK_INT(flags_to_maildir(all[i].bit, NULL, out), 1);
		CHECK_STR(out, one);
		CHECK_STR(flags_imap_name(all[i].bit), all[i].imap);
		CHECK_INT(flags_from_imap_name(all[i].imap, strlen(all[i].imap)), all[i].bit);
	}
	/* Any order and repeats in, sorted and unique out; unknown letters kept apart. */
	CHECK_INT(flags_from_maildir("cTaSFaD", 7, &flags, unknown), 0);
	CHECK_INT(flags, FLAG_TRASHED | FLAG_SEEN | FLAG_FLAGGED | FLAG_DRAFT);
	CHECK_STR(unknown, "ac");
	CHECK_INT(flags_to_maildir(flags, unknown, out), 6);
	CHECK_STR(out, "DFSTac");
	CHECK_INT(flags_to_maildir(FLAG_ALL, NULL, out), 6);
	CHECK_STR(out, "DFPRST");
	CHECK_INT(flags_to_maildir(0, NULL, out), 0);
	CHECK_STR(out, "");
	/* The bitmask decides known letters: an 'S' smuggled in unknown is dropped. */
	flags_to_maildir(FLAG_FLAGGED,
	                 "zS\x01"
	                 "a",
	                 out);
	CHECK_STR(out, "Faz");
	CHECK_INT(flags_from_maildir("S\x7f", 2, &flags, unknown), -EINVAL);
	CHECK_INT(flags_from_maildir("S ", 2, &flags, unknown), -EINVAL);
	CHECK_INT(flags_from_maildir("", 0, &flags, unknown), 0);
	CHECK_INT(flags, 0);
	/* Every graphic ASCII letter fits. */
	char every[95];
	for (int c = 0x21; c < 0x7f; c++)
		every[c - 0x21] = (char)c;
	CHECK_INT(flags_from_maildir(every, 94, &flags, unknown), 0);
	CHECK_INT(flags, FLAG_ALL);
	CHECK_INT(strlen(unknown), 88);
	CHECK_INT(flags_to_maildir(flags, unknown, out), 94);
	CHECK(memcmp(out, every, 94) == 0);
}

static void test_flags_imap(void)
{
	CHECK_INT(flags_from_imap_name("\\SEEN", 5), FLAG_SEEN);
	CHECK_INT(flags_from_imap_name("\\answered", 9), FLAG_REPLIED);
	CHECK_INT(flags_from_imap_name("$FORWARDED", 10), FLAG_PASSED);
	CHECK_INT(flags_from_imap_name("\\Recent", 7), 0);
	CHECK_INT(flags_from_imap_name("\\*", 2), 0);
	CHECK_INT(flags_from_imap_name("Junk", 4), 0);
	CHECK_INT(flags_from_imap_name("\\See", 4), 0);
	CHECK_INT(flags_from_imap_name("\\Seenx", 6), 0);
	const char *list = "(\\Seen \\flagged $Junk \\Recent $Forwarded)";
	CHECK_INT(flags_from_imap_list(list, strlen(list)), FLAG_SEEN | FLAG_FLAGGED | FLAG_PASSED);
	CHECK_INT(flags_from_imap_list("()", 2), 0);
	CHECK_INT(flags_from_imap_list("\\Draft \\Deleted", 15), FLAG_DRAFT | FLAG_TRASHED);
	struct buf b = {0};
	flags_format_imap(&b, 0);
	CHECK_STR(buf_str(&b), "()");
	buf_reset(&b);
	flags_format_imap(&b, FLAG_SEEN | FLAG_FLAGGED);
	CHECK_STR(buf_str(&b), "(\\Flagged \\Seen)");
	buf_reset(&b);
	flags_format_imap(&b, FLAG_ALL);
	CHECK_STR(buf_str(&b), "(\\Draft \\Flagged $Forwarded \\Answered \\Seen \\Deleted)");
	/* Format then parse gives the set back, for all 64 sets. */
	for (unsigned f = 0; f <= FLAG_ALL; f++) {
		buf_reset(&b);
		flags_format_imap(&b, f);
		CHECK_INT(flags_from_imap_list(b.data, b.len), f);
	}
	buf_free(&b);
}

/* ---- names ---- */

static void test_name_parse(void)
{
	struct maildir_name nm;
	CHECK_INT(maildir_name_parse("1700000000.M1P2Q3.host:2,FSa", &nm), 0);
	CHECK_INT(nm.base_len, strlen("1700000000.M1P2Q3.host"));
	CHECK(strncmp(nm.base, "1700000000.M1P2Q3.host", nm.base_len) == 0);
	CHECK_INT(nm.flags, FLAG_FLAGGED | FLAG_SEEN);
	CHECK_STR(nm.unknown, "a");
	CHECK(nm.has_info);
	CHECK_INT(maildir_name_parse("1700000000.M1P2Q3.host", &nm), 0);
	CHECK(!nm.has_info);
	CHECK_INT(nm.flags, 0);
	CHECK_INT(nm.base_len, 22);
	CHECK_INT(maildir_name_parse("123.x.h:2,", &nm), 0);
	CHECK(nm.has_info);
	CHECK_INT(nm.flags, 0);
	CHECK_INT(maildir_name_parse("123.x.h;2,RS", &nm), 0);
	CHECK_INT(nm.base_len, 7);
	CHECK_INT(nm.flags, FLAG_REPLIED | FLAG_SEEN);
	/* The first separator wins, so a base holds neither. */
	CHECK_INT(maildir_name_parse("a;2,S.b:2,F", &nm), 0);
	CHECK_INT(nm.base_len, 1);
	CHECK_INT(nm.flags, FLAG_SEEN | FLAG_FLAGGED);
	CHECK_STR(nm.unknown, ",.2:b");
	CHECK_INT(maildir_name_parse("a:2,S;2,F", &nm), 0);
	CHECK_INT(nm.base_len, 1);
	CHECK_INT(nm.flags, FLAG_SEEN | FLAG_FLAGGED);
	CHECK_STR(nm.unknown, ",2;");
	CHECK_INT(maildir_name_parse("a;b", &nm), 0);
	CHECK_INT(nm.base_len, 3);
	static const char *const bad[] = {
	    "",
	    ".hidden",
	    ".1.x.h:2,S",
	    ":2,S",
	    ";2,S",
	    "1.x.h:1,abc",
	    "1.x.h:2",
	    "1.x.h:",
	    "1.x.h:3,S",
	    "1.x.h:2,S\x01",
	    "1.x.h:2,S T",
	    "a/b",
	    "1.x.h:2,S\xc3\xa9",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK_INT(maildir_name_parse(bad[i], &nm), -EINVAL);
	char longname[300];
	memset(longname, 'a', 256);
	longname[256] = '\0';
	CHECK_INT(maildir_name_parse(longname, &nm), -EINVAL);
	longname[255] = '\0';
	CHECK_INT(maildir_name_parse(longname, &nm), 0);
}

static void test_name_build(void)
{
	static const char *const unknowns[] = {"", "a", "ablz"};
	const char *base = "1700000000.M123P45Q6.example.org";
	for (unsigned f = 0; f <= FLAG_ALL; f++) {
		for (size_t u = 0; u < ARRAY_SIZE(unknowns); u++) {
			for (int in_new = 0; in_new < 2; in_new++) {
				char *name =
				    maildir_name_build(base, strlen(base), f, unknowns[u], in_new);
				struct maildir_name nm;
				CHECK_INT(maildir_name_parse(name, &nm), 0);
				CHECK_INT(nm.base_len, strlen(base));
				CHECK(strncmp(nm.base, base, nm.base_len) == 0);
				CHECK_INT(nm.flags, f);
				CHECK_STR(nm.unknown, unknowns[u]);
				bool bare = in_new && f == 0 && !unknowns[u][0];
				CHECK(nm.has_info == !bare);
				free(name);
			}
		}
	}
	char *n = maildir_name_build("b", 1, 0, NULL, true);
	CHECK_STR(n, "b");
	free(n);
	n = maildir_name_build("b", 1, 0, NULL, false);
	CHECK_STR(n, "b:2,");
	free(n);
	n = maildir_name_build("bXYZ", 1, FLAG_SEEN | FLAG_DRAFT, "c", false);
	CHECK_STR(n, "b:2,DSc");
	free(n);
	CHECK(maildir_flags_in_new(0));
	CHECK(maildir_flags_in_new(FLAG_FLAGGED));
	CHECK(!maildir_flags_in_new(FLAG_SEEN));
	CHECK(!maildir_flags_in_new(FLAG_ALL));
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_name_unique(void)
{
	enum { COUNT = 100000 };
	char(*names)[MAILDIR_UNIQUE_MAX] = xmalloc(COUNT * sizeof(*names));
	for (size_t i = 0; i < COUNT; i++)
		maildir_name_unique(names[i]);
	char pid[32];
	snprintf(pid, sizeof(pid), "P%ld", (long)getpid());
	struct maildir_name nm;
	for (size_t i = 0; i < COUNT; i += 997) {
		CHECK_INT(maildir_name_parse(names[i], &nm), 0);
		CHECK(!nm.has_info);
		CHECK(strchr(names[i], ':') == NULL && strchr(names[i], '/') == NULL);
		CHECK(strstr(names[i], ".M") != NULL && strstr(names[i], pid) != NULL);
	}
	qsort(names, COUNT, sizeof(*names), str_cmp);
	size_t dups = 0;
	for (size_t i = 1; i < COUNT; i++)
		dups += strcmp(names[i - 1], names[i]) == 0;
	CHECK_INT(dups, 0);
	free(names);
}

/* ---- folder paths ---- */

/* The guarantees of path.h for one local path. */
static bool path_safe(enum maildir_layout layout, const struct buf *rel)
{
	if (strlen(buf_str(rel)) != rel->len || buf_str(rel)[0] == '/')
		return false;
	for (size_t i = 0; i < rel->len; i++)
		if ((unsigned char)rel->data[i] < 0x20 || rel->data[i] == 0x7f)
			return false;
	if (layout == MAILDIR_LAYOUT_PLUSPLUS)
		return rel->len == 0 ||
		       (rel->data[0] == '.' && !strchr(rel->data, '/') &&
		        strcmp(rel->data, ".") != 0 && strcmp(rel->data, "..") != 0);
	const char *c = buf_str(rel);
	for (;;) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (c[0] == '.' && (n == 1 || (n == 2 && c[1] == '.'))))
			return false;
		if (n == 3 &&
		    (!strncmp(c, "new", 3) || !strncmp(c, "cur", 3) || !strncmp(c, "tmp", 3)))
			return false;
		if (!c[n])
			return true;
		c += n + 1;
	}
}

/* name[0..len) maps to want (NULL: refused) and, when mapped, back to
 * itself (or to "INBOX" for any spelling of INBOX). */
static void check_map(enum maildir_layout layout, const char *name, size_t len, char delim,
                      const char *want)
{
	struct buf rel = {0}, back = {0};
	struct err e = {0};
	buf_puts(&rel, "keep");
	int rc = maildir_path_from_server(&rel, layout, name, len, delim, &e);
	if (!want) {
		CHECK(rc < 0);
		CHECK(e.msg[0] != '\0');
		CHECK_STR(buf_str(&rel), "keep");
		buf_free(&rel);
		return;
	}
	CHECK_INT(rc, 0);
	buf_consume(&rel, 4);
	CHECK_STR(buf_str(&rel), want);
	CHECK(path_safe(layout, &rel));
	CHECK_INT(maildir_path_to_server(&back, layout, buf_str(&rel), delim, &e), 0);
	bool inbox = len == 5 && strncasecmp(name, "INBOX", 5) == 0;
	CHECK_INT(back.len, inbox ? 5 : len);
	CHECK(memcmp(back.data ? back.data : "", inbox ? "INBOX" : name, back.len) == 0);
	buf_free(&rel);
	buf_free(&back);
}

#define MAP(layout, name, delim, want) check_map(layout, name, sizeof(name) - 1, delim, want)

static void test_path_verbatim(void)
{
	enum maildir_layout V = MAILDIR_LAYOUT_VERBATIM;
	MAP(V, "INBOX", '/', "INBOX");
	MAP(V, "inbox", '/', "INBOX");
	MAP(V, "Sent", '/', "Sent");
	MAP(V, "A/B", '/', "A/B");
	MAP(V, "A.B", '.', "A/B");
	MAP(V, "A/B", '.', "A%2FB");
	MAP(V, "A.B", '/', "A.B");
	MAP(V, "A/B", 0, "A%2FB");
	MAP(V, "INBOX/Sub", '/', "INBOX/Sub");
	MAP(V, "[Gmail]/Sent Mail", '/', "[Gmail]/Sent Mail");
	MAP(V, "Entw\xc3\xbcrfe/\xe2\x82\xac", '/', "Entw\xc3\xbcrfe/\xe2\x82\xac");
	MAP(V, "../x", '/', "%2E./x");
	MAP(V, "..", '/', "%2E.");
	MAP(V, ".", '/', "%2E");
	MAP(V, "/etc", '/', "%/etc");
	MAP(V, "/", '/', "%/%");
	MAP(V, "a//b", '/', "a/%/b");
	MAP(V, "a/", '/', "a/%");
	MAP(V, "a/../../b", '/', "a/%2E./%2E./b");
	MAP(V, "../../etc/passwd", '.', "%/%/%2F/%/%2Fetc%2Fpasswd");
	MAP(V, "..", '.', "%/%/%");
	MAP(V, ".notmuch", '/', "%2Enotmuch");
	MAP(V, "a.b.", '/', "a.b.");
	MAP(V, "new", '/', "%6Eew");
	MAP(V, "A/cur", '/', "A/%63ur");
	MAP(V, "tmp/x", '/', "%74mp/x");
	MAP(V, "News", '/', "News");
	MAP(V, "100%", '/', "100%25");
	MAP(V, "%41", '/', "%2541");
	MAP(V,
	    "a\x01"
	    "b\x1f\x7f",
	    '/', "a%01b%1F%7F");
	MAP(V, "tab\there", '/', "tab%09here");
	MAP(V, "nul\0x", '/', "nul%00x");
	MAP(V, "\xff\xfe", '/', "%FF%FE");
	MAP(V, "a\xc3", '/', "a%C3");
	MAP(V, "\xc0\xaf", '/', "%C0%AF");               /* overlong '/' */
	MAP(V, "\xed\xa0\x80", '/', "%ED%A0%80");        /* surrogate */
	MAP(V, "\xf4\x90\x80\x80", '/', "%F4%90%80%80"); /* above U+10FFFF */
	MAP(V, "\xe2\x82", '/', "%E2%82");
	MAP(V, "", '/', NULL);
	char longname[400];
	memset(longname, 'x', sizeof(longname));
	check_map(V, longname, 256, '/', NULL);
	longname[255] = '\0';
	check_map(V, longname, 255, '/', longname);
	memset(longname, '%', 100); /* 100 bytes escape to 300 */
	check_map(V, longname, 100, '/', NULL);
	memset(longname, '%', 85);
	struct buf esc = {0};
	CHECK_INT(maildir_path_from_server(&esc, V, longname, 85, '/', NULL), 0);
	CHECK_INT(esc.len, 255);
	buf_free(&esc);
	/* Many short levels are fine up to the path limit. */
	char deep[MAILDIR_REL_MAX + 10];
	for (size_t i = 0; i < sizeof(deep); i += 2) {
		deep[i] = 'd';
		deep[i + 1] = '/';
	}
	check_map(V, deep, MAILDIR_REL_MAX + 1, '/', NULL);
	struct buf rel = {0};
	CHECK_INT(maildir_path_from_server(&rel, V, deep, MAILDIR_REL_MAX - 1, '/', NULL), 0);
	buf_free(&rel);
}

static void test_path_plusplus(void)
{
	enum maildir_layout P = MAILDIR_LAYOUT_PLUSPLUS;
	MAP(P, "INBOX", '/', "");
	MAP(P, "Inbox", '.', "");
	MAP(P, "Sent", '/', ".Sent");
	MAP(P, "A/B", '/', ".A.B");
	MAP(P, "A.B", '.', ".A.B");
	MAP(P, "A.B", '/', ".A%2EB");
	MAP(P, "A/B", '.', ".A%2FB");
	MAP(P, "INBOX/x", '/', ".INBOX.x");
	MAP(P, "../x", '/', ".%2E%2E.x");
	MAP(P, "..", '.', ".%.%.%");
	MAP(P, "/etc", '/', ".%.etc");
	MAP(P, "new", '/', ".new");
	MAP(P, "a\x02", '/', ".a%02");
	MAP(P, "100%", '/', ".100%25");
	MAP(P, "", '/', NULL);
	char longname[300];
	memset(longname, 'x', sizeof(longname));
	struct buf rel = {0};
	/* The whole directory name is one component: "." and 254 bytes fit. */
	CHECK_INT(maildir_path_from_server(&rel, P, longname, 254, '/', NULL), 0);
	CHECK_INT(rel.len, 255);
	buf_reset(&rel);
	CHECK_INT(maildir_path_from_server(&rel, P, longname, 255, '/', NULL), -ENAMETOOLONG);
	CHECK_INT(rel.len, 0);
	buf_free(&rel);
}

/* rel has no server name: refused with a reason. */
static void check_refused(enum maildir_layout layout, const char *rel, char delim)
{
	struct buf name = {0};
	struct err e = {0};
	buf_puts(&name, "keep");
	CHECK_INT(maildir_path_to_server(&name, layout, rel, delim, &e), -EINVAL);
	CHECK(e.msg[0] != '\0');
	CHECK_STR(buf_str(&name), "keep");
	buf_free(&name);
}

static void test_path_reverse(void)
{
	enum maildir_layout V = MAILDIR_LAYOUT_VERBATIM, P = MAILDIR_LAYOUT_PLUSPLUS;
	struct buf name = {0};
	CHECK_INT(maildir_path_to_server(&name, V, "Lists/rust", '.', NULL), 0);
	CHECK_STR(buf_str(&name), "Lists.rust");
	buf_reset(&name);
	CHECK_INT(maildir_path_to_server(&name, P, ".Lists.rust", '/', NULL), 0);
	CHECK_STR(buf_str(&name), "Lists/rust");
	buf_reset(&name);
	CHECK_INT(maildir_path_to_server(&name, P, "", '/', NULL), 0);
	CHECK_STR(buf_str(&name), "INBOX");
	buf_free(&name);
	/* Not the form the forward mapping writes. */
	check_refused(V, "", '/');
	check_refused(V, "inbox", '/');
	check_refused(V, "100%", '/');
	check_refused(V, "%4", '/');
	check_refused(V, "%41", '/');
	check_refused(V, "%2e.", '/');
	check_refused(V, "a%2fb", '.');
	check_refused(V, "a\x01", '/');
	check_refused(V, "\xff", '/');
	check_refused(V, ".notmuch", '/');
	check_refused(V, "new", '/');
	check_refused(V, "A/new", '/');
	check_refused(V, "a/", '/');
	check_refused(V, "/a", '/');
	check_refused(V, "a//b", '/');
	check_refused(V, "%", '/');
	/* The delimiter inside one level, or nesting without a hierarchy. */
	check_refused(V, "A/B.C", '.');
	check_refused(V, "A/B", 0);
	check_refused(P, "Sent", '/');
	check_refused(P, ".", '/');
	check_refused(P, "..", '/');
	check_refused(P, ".a/b", '/');
	check_refused(P, ".a..b", '/');
	check_refused(P, ".a.b", 0);
	check_refused(P, ".a/b", '.');
}

static void test_special_use(void)
{
	CHECK_STR(maildir_special_use_name("\\Sent"), "Sent");
	CHECK_STR(maildir_special_use_name("\\sent"), "Sent");
	CHECK_STR(maildir_special_use_name("\\Drafts"), "Drafts");
	CHECK_STR(maildir_special_use_name("\\JUNK"), "Junk");
	CHECK_STR(maildir_special_use_name("\\Trash"), "Trash");
	CHECK_STR(maildir_special_use_name("\\Archive"), "Archive");
	CHECK(maildir_special_use_name("\\All") == NULL);
	CHECK(maildir_special_use_name("\\Flagged") == NULL);
	CHECK(maildir_special_use_name("Sent") == NULL);
	CHECK(maildir_special_use_name(NULL) == NULL);
}

/* ---- the local folder tree ---- */

static void make_maildir(const char *rel)
{
	char *p = tpath(rel);
	CHECK_INT(maildir_ensure(p, NULL), 0);
	free(p);
}

static void make_dir(const char *rel)
{
	char *p = tpath(rel);
	CHECK_INT(mkdir(p, 0700), 0);
	free(p);
}

static const struct maildir_tree_entry *find_rel(const struct maildir_tree *t, const char *rel)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->v[i].rel, rel) == 0)
			return &t->v[i];
	return NULL;
}

static void check_entry(const struct maildir_tree *t, const char *rel, const char *name)
{
	const struct maildir_tree_entry *en = find_rel(t, rel);
	CHECK(en != NULL);
	if (!en)
		return;
	if (name) {
		CHECK_STR(en->name, name);
		CHECK(en->why == NULL);
	} else {
		CHECK(en->name == NULL);
		CHECK(en->why != NULL);
	}
}

static void test_tree_verbatim(void)
{
	make_dir("v");
	make_maildir("v/INBOX");
	make_maildir("v/INBOX/Sub");
	make_maildir("v/Sent");
	make_maildir("v/Lists/rust"); /* Lists itself is no Maildir */
	make_maildir("v/%2Ehidden");
	make_maildir("v/100%"); /* made by hand: not canonical */
	make_maildir("v/a%2Fb");
	make_dir("v/.notmuch");
	make_maildir("v/.notmuch/xapian"); /* under a dot-dir: not looked at */
	char *link = tpath("v/link"), *target = tpath("v/Sent");
	CHECK_INT(symlink(target, link), 0);
	free(link);
	free(target);
	struct maildir_tree t = {0};
	char *root = tpath("v");
	CHECK_INT(maildir_tree_list(&t, root, MAILDIR_LAYOUT_VERBATIM, '.', NULL), 0);
	CHECK_INT(t.n, 7);
	check_entry(&t, "INBOX", "INBOX");
	check_entry(&t, "INBOX/Sub", "INBOX.Sub");
	check_entry(&t, "Sent", "Sent");
	check_entry(&t, "Lists/rust", "Lists.rust");
	check_entry(&t, "%2Ehidden", NULL); /* '.', the delimiter, inside one level */
	check_entry(&t, "100%", NULL);
	check_entry(&t, "a%2Fb", "a/b");
	CHECK(find_rel(&t, "Lists") == NULL);
	CHECK(find_rel(&t, "link") == NULL);
	for (size_t i = 1; i < t.n; i++)
		CHECK(strcmp(t.v[i - 1].rel, t.v[i].rel) < 0);
	/* With '/' as the delimiter, "a%2Fb" has no server name. */
	CHECK_INT(maildir_tree_list(&t, root, MAILDIR_LAYOUT_VERBATIM, '/', NULL), 0);
	check_entry(&t, "a%2Fb", NULL);
	check_entry(&t, "INBOX/Sub", "INBOX/Sub");
	check_entry(&t, "%2Ehidden", ".hidden");
	maildir_tree_free(&t);
	free(root);
	struct err e = {0};
	root = tpath("missing");
	CHECK_INT(maildir_tree_list(&t, root, MAILDIR_LAYOUT_VERBATIM, '/', &e), -ENOENT);
	CHECK(strstr(e.msg, "missing") != NULL);
	free(root);
}

static void test_tree_plusplus(void)
{
	make_maildir("pp");
	make_maildir("pp/.Sent");
	make_maildir("pp/.Lists.rust");
	make_maildir("pp/.a%2Eb");
	make_maildir("pp/.bad%");
	make_dir("pp/.notmuch");
	make_dir("pp/plain");
	struct maildir_tree t = {0};
	char *root = tpath("pp");
	CHECK_INT(maildir_tree_list(&t, root, MAILDIR_LAYOUT_PLUSPLUS, '/', NULL), 0);
	CHECK_INT(t.n, 5);
	check_entry(&t, "", "INBOX");
	check_entry(&t, ".Sent", "Sent");
	check_entry(&t, ".Lists.rust", "Lists/rust");
	check_entry(&t, ".a%2Eb", "a.b");
	check_entry(&t, ".bad%", NULL);
	maildir_tree_free(&t);
	free(root);
}

/* ---- creating and scanning ---- */

static void test_ensure(void)
{
	char *p = tpath("e/deep/er/INBOX");
	struct err e = {0};
	CHECK_INT(maildir_ensure(p, &e), 0);
	static const char *const subs[] = {"", "/tmp", "/new", "/cur"};
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		char *s = xasprintf("%s%s", p, subs[i]);
		struct stat st;
		CHECK_INT(stat(s, &st), 0);
		CHECK(S_ISDIR(st.st_mode));
		CHECK_INT(st.st_mode & 0777, 0700);
		free(s);
	}
	CHECK_INT(maildir_ensure(p, &e), 0); /* again: nothing to do */
	char *slash = xasprintf("%s/", p);
	CHECK_INT(maildir_ensure(slash, &e), 0);
	free(slash);
	char *file = tpath("e/file");
	put_file(file, "x");
	char *below = xasprintf("%s/sub", file);
	CHECK_INT(maildir_ensure(below, &e), -ENOTDIR);
	CHECK(strstr(e.msg, "file") != NULL);
	CHECK_INT(maildir_ensure(file, &e), -ENOTDIR);
	free(below);
	free(file);
	struct maildir *m = NULL;
	char *half = tpath("e/deep");
	CHECK_INT(maildir_open(&m, half, "Half", &e), -ENOENT);
	CHECK(m == NULL);
	CHECK(strstr(e.msg, "Half: ") == e.msg && strstr(e.msg, "not a Maildir") != NULL);
	CHECK_INT(maildir_open(&m, p, "INBOX", &e), 0);
	CHECK_STR(maildir_path(m), p);
	CHECK_STR(maildir_label(m), "INBOX");
	maildir_free(&m);
	CHECK(m == NULL);
	maildir_free(&m);
	free(half);
	free(p);
}

static void put_msg(const char *folder, const char *sub, const char *file)
{
	char *p = xasprintf("%s/%s/%s/%s", tmproot, folder, sub, file);
	put_file(p, "Subject: x\n\nbody\n");
	free(p);
}

static void test_scan(void)
{
	struct maildir *m = fresh_maildir("s", "Scan");
	put_msg("s", "new", "300.a.h");
	put_msg("s", "cur", "100.a.h:2,S");
	put_msg("s", "cur", "200.a.h:2,FSab");
	put_msg("s", "cur", "150.a.h;2,RS");
	put_msg("s", "new", "250.a.h:2,F");
	put_msg("s", "cur", ".hidden");
	put_msg("s", "cur", "bad:1,x");
	put_msg("s", "new", "bad2:2,S T");
	char *dir = tpath("s/cur/adir");
	CHECK_INT(mkdir(dir, 0700), 0);
	free(dir);
	struct maildir_scan *s = NULL;
	struct err e = {0};
	CHECK_INT(maildir_scan(m, 0, &s, &e), 0);
	CHECK_INT(s->n, 5);
	CHECK_INT(s->skipped, 2);
	CHECK_INT(s->dup_bases, 0);
	static const char *const bases[] = {"100.a.h", "150.a.h", "200.a.h", "250.a.h", "300.a.h"};
	static const unsigned flags[] = {FLAG_SEEN, FLAG_REPLIED | FLAG_SEEN,
	                                 FLAG_FLAGGED | FLAG_SEEN, FLAG_FLAGGED, 0};
	static const bool in_new[] = {false, false, false, true, true};
	for (size_t i = 0; i < s->n && i < 5; i++) {
		CHECK_STR(s->v[i].base, bases[i]);
		CHECK_INT(s->v[i].flags, flags[i]);
		CHECK_INT(s->v[i].in_new, in_new[i]);
		CHECK(!s->v[i].dup);
		CHECK_INT(s->v[i].size, 0);
	}
	CHECK_STR(s->v[2].unknown, "ab");
	CHECK_STR(s->v[2].file, "200.a.h:2,FSab");
	CHECK_STR(s->v[1].file, "150.a.h;2,RS");
	CHECK_STR(s->v[0].unknown, "");
	maildir_scan_free(&s);
	CHECK(s == NULL);
	CHECK_INT(maildir_scan(m, MAILDIR_SCAN_STAT, &s, &e), 0);
	CHECK_INT(s->n, 5);
	CHECK_INT(s->v[0].size, strlen("Subject: x\n\nbody\n"));
	CHECK(s->v[0].mtime.tv_sec > 0);
	maildir_scan_free(&s);
	maildir_free(&m);
}

static void test_scan_dups(void)
{
	struct maildir *m = fresh_maildir("d", "Dups");
	put_msg("d", "new", "500.x.h");
	put_msg("d", "cur", "500.x.h:2,S");
	put_msg("d", "cur", "600.x.h:2,S");
	put_msg("d", "cur", "600.x.h:2,FS");
	put_msg("d", "cur", "600.x.h:2,");
	put_msg("d", "cur", "700.x.h:2,S");
	struct maildir_scan *s = NULL;
	CHECK_INT(maildir_scan(m, 0, &s, NULL), 0);
	CHECK_INT(s->n, 6);
	CHECK_INT(s->dup_bases, 2);
	CHECK(s->v[0].dup && s->v[1].dup);
	CHECK(s->v[0].in_new && !s->v[1].in_new); /* new/ first */
	CHECK(s->v[2].dup && s->v[3].dup && s->v[4].dup);
	CHECK_STR(s->v[2].file, "600.x.h:2,"); /* then by file name */
	CHECK_STR(s->v[3].file, "600.x.h:2,FS");
	CHECK(!s->v[5].dup);
	maildir_scan_free(&s);
	maildir_free(&m);
}

static bool keep_listed(const struct maildir_entry *en, void *ctx)
{
	for (const char *const *b = ctx; *b; b++)
		if (strcmp(en->base, *b) == 0)
			return true;
	return false;
}

/* Cutting a listing down keeps the chosen entries in order, their strings
 * where they were, and the listing's stamp. */
static void test_scan_keep(void)
{
	struct maildir *m = fresh_maildir("kp", "Keep");
	for (int i = 0; i < 40; i++) {
		char name[32];
		snprintf(name, sizeof(name), "%d.k.h:2,S", 100 + i);
		put_msg("kp", "cur", name);
	}
	struct maildir_scan *s = NULL;
	CHECK_INT(maildir_scan(m, 0, &s, NULL), 0);
	CHECK_INT(s->n, 40);
	const char *base7 = s->v[7].base, *file30 = s->v[30].file;
	struct maildir_stamp stamp = s->stamp;
	static const char *const keep[] = { "130.k.h", "107.k.h", "nowhere", NULL };
	maildir_scan_keep(s, keep_listed, (void *)keep);
	CHECK_INT(s->n, 2);
	CHECK(s->v[0].base == base7 && s->v[1].file == file30);
	CHECK_STR(s->v[0].file, "107.k.h:2,S");
	CHECK_STR(s->v[1].base, "130.k.h");
	CHECK(maildir_stamp_equal(&s->stamp, &stamp));
	static const char *const none[] = { NULL };
	maildir_scan_keep(s, keep_listed, (void *)none);
	CHECK_INT(s->n, 0);
	maildir_scan_free(&s);
	maildir_free(&m);
}

static void test_stamp(void)
{
	struct timespec now = {1700000000, 500000000};
	struct timespec t = {1700000000, 450000000}; /* 50 ms ago, fine-grained */
	CHECK(!maildir_mtime_trusted(&t, &now));
	t.tv_nsec = 300000000; /* 200 ms ago */
	CHECK(maildir_mtime_trusted(&t, &now));
	t = (struct timespec){1700000000, 0}; /* whole seconds: 2 s margin */
	CHECK(!maildir_mtime_trusted(&t, &now));
	t.tv_sec -= 2;
	CHECK(maildir_mtime_trusted(&t, &now));
	t = (struct timespec){1700000001, 1}; /* the future */
	CHECK(!maildir_mtime_trusted(&t, &now));
	t = (struct timespec){1600000000, 1};
	CHECK(maildir_mtime_trusted(&t, &now));

	struct maildir *m = fresh_maildir("st", "Stamp");
	struct maildir_stamp a, b;
	CHECK_INT(maildir_stamp_read(m, &a, NULL), 0);
	CHECK(!maildir_stamp_trusted(&a)); /* just created */
	struct maildir_scan *s = NULL;
	CHECK_INT(maildir_scan(m, 0, &s, NULL), 0);
	CHECK(!s->consistent);
	maildir_scan_free(&s);
	/* Age the directories: then a scan is consistent and the stamp trusted. */
	struct timespec old[2] = {{1600000000, 123}, {1600000000, 123}};
	char *n = tpath("st/new"), *c = tpath("st/cur");
	CHECK_INT(utimensat(AT_FDCWD, n, old, 0), 0);
	CHECK_INT(utimensat(AT_FDCWD, c, old, 0), 0);
	CHECK_INT(maildir_scan(m, 0, &s, NULL), 0);
	CHECK(s->consistent);
	CHECK(maildir_stamp_trusted(&s->stamp));
	CHECK_INT(maildir_stamp_read(m, &b, NULL), 0);
	CHECK(maildir_stamp_equal(&s->stamp, &b));
	put_msg("st", "new", "1.a.b");
	CHECK_INT(maildir_stamp_read(m, &b, NULL), 0);
	CHECK(!maildir_stamp_equal(&s->stamp, &b));
	maildir_scan_free(&s);
	free(n);
	free(c);
	maildir_free(&m);
}

/* ---- delivery ---- */

enum { BIG = 50 * 1024 * 1024, CHUNK = 64 * 1024 };

/* 50 MB in 64 KiB pieces: the bytes arrive whole, the date is set, and the
 * memory high-water mark barely moves. Runs first, before other tests raise
 * that mark. */
static void test_deliver_big(void)
{
	struct maildir *m = fresh_maildir("big", "Big");
	unsigned char *chunk = xmalloc(CHUNK), *back = xmalloc(CHUNK);
	long rss_before = maxrss_kib();
	struct maildir_batch *b = maildir_batch_new();
	struct maildir_delivery *d;
	struct err e = {0};
	CHECK_INT(maildir_batch_add(b, m, &d, &e), 0);
	uint64_t state = 42;
	for (size_t done = 0; done < BIG; done += CHUNK) {
		fill(&state, chunk, CHUNK);
		CHECK_INT(maildir_delivery_write(d, chunk, CHUNK, &e), 0);
	}
	struct timespec date = {1234567890, 0};
	CHECK_INT(maildir_delivery_finish(d, 0, NULL, &date, &e), 0);
	CHECK_INT(maildir_batch_commit(b, &e), 0);
	long rss_delta = maxrss_kib() - rss_before;
	CHECK(rss_delta < 8 * 1024);
	CHECK(maildir_delivery_in_new(d));
	CHECK_STR(maildir_delivery_file(d), maildir_delivery_base(d)); /* new/, no flags: no info */
	char *path = xasprintf("%s/big/new/%s", tmproot, maildir_delivery_file(d));
	struct stat st;
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_size, BIG);
	CHECK_INT(st.st_mtim.tv_sec, 1234567890);
	CHECK_INT(st.st_mode & 0777, 0600);
	/* Read back through the upload reader, in pieces. */
	struct maildir_msg *r = NULL;
	CHECK_INT(maildir_msg_open(&r, m, true, maildir_delivery_file(d), &e), 0);
	CHECK_INT(maildir_msg_size(r), BIG);
	CHECK_INT(maildir_msg_mtime(r).tv_sec, 1234567890);
	state = 42;
	size_t total = 0, mismatches = 0;
	while (total < BIG) {
		size_t got = 0;
		while (got < CHUNK) {
			ssize_t n = maildir_msg_read(r, back + got, CHUNK - got, false, &e);
			CHECK(n > 0);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		fill(&state, chunk, CHUNK);
		mismatches += memcmp(chunk, back, CHUNK) != 0;
		total += CHUNK;
	}
	CHECK_INT(mismatches, 0);
	CHECK_INT(maildir_msg_read(r, back, CHUNK, false, &e), 0);
	CHECK_INT(maildir_msg_read(r, back, CHUNK, false, &e), 0);
	maildir_msg_free(&r);
	char *tmp = tpath("big/tmp");
	CHECK_INT(count_entries(tmp), 0);
	free(tmp);
	free(path);
	maildir_batch_free(&b);
	free(chunk);
	free(back);
	maildir_free(&m);
}

static void test_deliver_placement(void)
{
	struct maildir *m = fresh_maildir("p", "Place");
	bool in_new;
	char *f = deliver_text(m, "A: b\n\nx\n", 0, NULL, &in_new);
	CHECK(in_new && !strchr(f, ':'));
	free(f);
	f = deliver_text(m, "A: b\n\nx\n", FLAG_FLAGGED, NULL, &in_new);
	CHECK(in_new && strstr(f, ":2,F") && strlen(strstr(f, ":2,F")) == 4);
	free(f);
	f = deliver_text(m, "A: b\n\nx\n", FLAG_SEEN | FLAG_REPLIED, "ba", &in_new);
	CHECK(!in_new && strstr(f, ":2,RSab") != NULL);
	char *p = xasprintf("%s/p/cur/%s", tmproot, f);
	CHECK(exists(p));
	free(p);
	free(f);
	f = deliver_text(m, "A: b\n\nx\n", FLAG_SEEN, NULL, &in_new);
	CHECK(!in_new && strstr(f, ":2,S") != NULL);
	free(f);
	char *dir = tpath("p/new");
	CHECK_INT(count_entries(dir), 2);
	free(dir);
	dir = tpath("p/cur");
	CHECK_INT(count_entries(dir), 2);
	free(dir);
	dir = tpath("p/tmp");
	CHECK_INT(count_entries(dir), 0);
	free(dir);
	maildir_free(&m);
}

/* A batch larger than MAILDIR_BATCH_OPEN_MAX, over two folders, with one
 * abort, one still being written at the commit, and the statuses. */
static void test_deliver_batch(void)
{
	enum { N = 3 * MAILDIR_BATCH_OPEN_MAX + 5 };
	struct maildir *m1 = fresh_maildir("b1", "One"), *m2 = fresh_maildir("b2", "Two");
	struct maildir_batch *b = maildir_batch_new();
	struct maildir_delivery *d[N], *aborted, *open;
	struct err e = {0};
	for (int i = 0; i < N; i++) {
		CHECK_INT(maildir_batch_add(b, i % 2 ? m1 : m2, &d[i], &e), 0);
		char text[64];
		snprintf(text, sizeof(text), "Message-ID: <%d@x>\n\nbody %d\n", i, i);
		CHECK_INT(maildir_delivery_write(d[i], text, strlen(text), &e), 0);
		CHECK_INT(maildir_delivery_finish(d[i], i % 3 ? FLAG_SEEN : 0, NULL, NULL, &e), 0);
		CHECK_INT(maildir_delivery_status(d[i], NULL), -EINPROGRESS);
	}
	CHECK_INT(maildir_batch_add(b, m1, &aborted, &e), 0);
	CHECK_INT(maildir_delivery_write(aborted, "x", 1, &e), 0);
	maildir_delivery_abort(aborted);
	CHECK_INT(maildir_delivery_status(aborted, NULL), -ECANCELED);
	CHECK_INT(maildir_batch_add(b, m2, &open, &e), 0);
	CHECK_INT(maildir_delivery_write(open, "y", 1, &e), 0);
	CHECK_INT(maildir_batch_commit(b, &e), 0);
	int done = 0;
	for (int i = 0; i < N; i++) {
		const struct err *de = NULL;
		done += maildir_delivery_status(d[i], &de) == 0;
		CHECK(de == NULL);
		CHECK_INT(maildir_delivery_in_new(d[i]), i % 3 == 0);
	}
	CHECK_INT(done, N);
	CHECK_INT(maildir_delivery_status(open, NULL), -EINPROGRESS);
	char *t1 = tpath("b1/tmp"), *t2 = tpath("b2/tmp");
	CHECK_INT(count_entries(t1), 0);
	CHECK_INT(count_entries(t2), 1); /* the one still open */
	/* It can finish and be committed later; freeing the batch drops nothing done. */
	CHECK_INT(maildir_delivery_finish(open, 0, NULL, NULL, &e), 0);
	CHECK_INT(maildir_batch_commit(b, &e), 0);
	CHECK_INT(maildir_delivery_status(open, NULL), 0);
	CHECK_INT(count_entries(t2), 0);
	maildir_batch_free(&b);
	CHECK(b == NULL);
	struct maildir_scan *s1 = NULL, *s2 = NULL;
	CHECK_INT(maildir_scan(m1, 0, &s1, NULL), 0);
	CHECK_INT(maildir_scan(m2, 0, &s2, NULL), 0);
	CHECK_INT(s1->n + s2->n, N + 1);
	CHECK_INT(s1->dup_bases + s2->dup_bases, 0);
	maildir_scan_free(&s1);
	maildir_scan_free(&s2);
	/* Freeing a batch aborts what was not committed. */
	b = maildir_batch_new();
	CHECK_INT(maildir_batch_add(b, m1, &open, &e), 0);
	CHECK_INT(maildir_delivery_finish(open, 0, NULL, NULL, &e), 0);
	CHECK_INT(count_entries(t1), 1);
	maildir_batch_free(&b);
	CHECK_INT(count_entries(t1), 0);
	free(t1);
	free(t2);
	maildir_free(&m1);
	maildir_free(&m2);
}

/* Five 300 KiB messages in one batch on a 1 MiB disk: those that fit are
 * committed whole, the others fail and leave nothing. */
static void enospc_in_batch(struct maildir *m, const char *folder, const unsigned char *chunk)
{
	enum { N = 5, SIZE = 300 * 1024 };
	struct maildir_batch *b = maildir_batch_new();
	struct maildir_delivery *d[N];
	struct err e = {0};
	int failed_writes = 0;
	for (int i = 0; i < N; i++) {
		CHECK_INT(maildir_batch_add(b, m, &d[i], &e), 0);
		int rc = 0;
		for (size_t done = 0; rc == 0 && done < SIZE; done += 4096)
			rc = maildir_delivery_write(d[i], chunk, 4096, &e);
		if (rc == 0)
			rc = maildir_delivery_finish(d[i], FLAG_SEEN, NULL, NULL, &e);
		failed_writes += rc < 0;
		if (rc < 0)
			CHECK_INT(rc, -ENOSPC);
		else
			CHECK_INT(maildir_delivery_status(d[i], NULL), -EINPROGRESS);
	}
	CHECK(failed_writes >= 2 && failed_writes < N);
	CHECK_INT(maildir_batch_commit(b, &e), 0);
	int done = 0;
	for (int i = 0; i < N; i++)
		done += maildir_delivery_status(d[i], NULL) == 0;
	CHECK_INT(done, N - failed_writes);
	maildir_batch_free(&b);
	struct maildir_scan *s = NULL;
	CHECK_INT(maildir_scan(m, MAILDIR_SCAN_STAT, &s, &e), 0);
	CHECK_INT(s->n, (size_t)done);
	for (size_t i = 0; i < s->n; i++)
		CHECK_INT(s->v[i].size, SIZE);
	maildir_scan_free(&s);
	char *tmp = xasprintf("%s/tmp", folder);
	CHECK_INT(count_entries(tmp), 0);
	free(tmp);
}

/* A 1 MiB tmpfs and a 2 MiB message: a clear error, and nothing left anywhere. */
static void test_deliver_enospc(void)
{
	char *mnt = tpath("small");
	CHECK_INT(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
		if (errno != EPERM)
			CHECK_INT(errno, 0);
		printf("SKIP test_deliver_enospc: mounting a tmpfs is not permitted (%s)\n",
		       strerror(errno));
		free(mnt);
		return;
	}
	char *folder = xasprintf("%s/INBOX", mnt);
	struct err e = {0};
	struct maildir *m = NULL;
	CHECK_INT(maildir_ensure(folder, &e), 0);
	CHECK_INT(maildir_open(&m, folder, "INBOX", &e), 0);
	unsigned char *chunk = xcalloc(1, CHUNK);
	struct maildir_batch *b = maildir_batch_new();
	struct maildir_delivery *d;
	CHECK_INT(maildir_batch_add(b, m, &d, &e), 0);
	int rc = 0;
	for (size_t done = 0; rc == 0 && done < 2 * 1024 * 1024; done += CHUNK)
		rc = maildir_delivery_write(d, chunk, CHUNK, &e);
	CHECK_INT(rc, -ENOSPC);
	CHECK_STR(e.msg, "INBOX: disk full (No space left on device) while writing a message");
	CHECK(e.cls == ERR_LOCAL);
	/* Dead from now on, with the same error; the commit has nothing to do. */
	memset(&e, 0, sizeof(e));
	CHECK_INT(maildir_delivery_write(d, "x", 1, &e), -ENOSPC);
	CHECK(strstr(e.msg, "disk full") != NULL);
	CHECK_INT(maildir_delivery_finish(d, FLAG_SEEN, NULL, NULL, &e), -ENOSPC);
	const struct err *de = NULL;
	CHECK_INT(maildir_delivery_status(d, &de), -ENOSPC);
	CHECK(de && strstr(de->msg, "INBOX: disk full") == de->msg);
	CHECK_INT(maildir_batch_commit(b, &e), 0);
	maildir_batch_free(&b);
	static const char *const subs[] = {"tmp", "new", "cur"};
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		char *p = xasprintf("%s/%s", folder, subs[i]);
		CHECK_INT(count_entries(p), 0);
		free(p);
	}
	/* The disk has room again: a small message goes through. */
	bool in_new;
	char *f = deliver_text(m, "A: b\n\nsmall\n", 0, NULL, &in_new);
	char *p = xasprintf("%s/new/%s", folder, f);
	CHECK_INT(unlink(p), 0);
	free(p);
	free(f);
	enospc_in_batch(m, folder, chunk);
	maildir_free(&m);
	free(chunk);
	free(folder);
	CHECK_INT(umount(mnt), 0);
	free(mnt);
}

/* A child delivers 100 KiB messages in 4 KiB pieces until it is killed with
 * SIGKILL at some moment: every message in new/ or cur/ is whole, whatever
 * the moment; at worst a partial file stays in tmp/. */
static void test_deliver_killed(void)
{
	enum { SIZE = 100 * 1024, PIECE = 4096 };
	struct maildir *m = fresh_maildir("k", "Killed");
	for (int round = 0; round < 5; round++) {
		pid_t pid = fork();
		CHECK(pid >= 0);
		if (pid == 0) {
			char piece[PIECE];
			memset(piece, 'k', sizeof(piece));
			for (;;) {
				struct maildir_batch *b = maildir_batch_new();
				struct maildir_delivery *d;
				if (maildir_batch_add(b, m, &d, NULL) < 0)
					_exit(1);
				for (size_t done = 0; done < SIZE; done += PIECE)
					maildir_delivery_write(d, piece, PIECE, NULL);
				maildir_delivery_finish(d, round % 2 ? FLAG_SEEN : 0, NULL, NULL,
				                        NULL);
				maildir_batch_commit(b, NULL);
				maildir_batch_free(&b);
			}
		}
		struct timespec wait = {0, (20 + 37 * round) * 1000000L};
		nanosleep(&wait, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	struct maildir_scan *s = NULL;
	CHECK_INT(maildir_scan(m, MAILDIR_SCAN_STAT, &s, NULL), 0);
	CHECK(s->n > 0);
	size_t partial = 0;
	for (size_t i = 0; i < s->n; i++)
		partial += s->v[i].size != SIZE;
	CHECK_INT(partial, 0);
	CHECK_INT(s->dup_bases, 0);
	maildir_scan_free(&s);
	char *tmp = tpath("k/tmp");
	CHECK(count_entries(tmp) <= 5);
	CHECK_INT(maildir_clean_tmp(m, -10, NULL, NULL), 0);
	CHECK_INT(count_entries(tmp), 0);
	free(tmp);
	maildir_free(&m);
}

static void test_clean_tmp(void)
{
	struct maildir *m = fresh_maildir("ct", "Clean");
	char *stale = tpath("ct/tmp/stale"), *dir = tpath("ct/tmp");
	put_file(stale, "x");
	/* Old access and modification times do not make it stale: its change
	 * time (which no one can set back) is now, as for a delivery whose date
	 * was just set. */
	struct timespec old[2] = {{1000000000, 0}, {1000000000, 0}};
	CHECK_INT(utimensat(AT_FDCWD, stale, old, 0), 0);
	size_t removed = 99;
	CHECK_INT(maildir_clean_tmp(m, MAILDIR_TMP_MAX_AGE, &removed, NULL), 0);
	CHECK_INT(removed, 0);
	CHECK(exists(stale));
	/* A limit in the future stands in for 36 hours passing. */
	CHECK_INT(maildir_clean_tmp(m, -10, &removed, NULL), 0);
	CHECK_INT(removed, 1);
	CHECK_INT(count_entries(dir), 0);
	free(stale);
	free(dir);
	maildir_free(&m);
}

/* A delivery of ours whose process is gone (kill -9) is removed at once; one
 * of a live process (this one) and a file of another program are not. */
static void test_clean_orphaned_deliveries(void)
{
	struct maildir *m = fresh_maildir("co", "Orphans");
	struct maildir_batch *b = maildir_batch_new();
	struct maildir_delivery *live;
	CHECK_INT(maildir_batch_add(b, m, &live, NULL), 0);
	long pid = -1;
	CHECK(maildir_name_ours(maildir_delivery_base(live), &pid) && pid == (long)getpid());
	pid_t child = fork();
	if (child == 0) {
		char name[MAILDIR_UNIQUE_MAX];
		maildir_name_unique(name);
		char *p = tpath("co/tmp");
		char *f = xasprintf("%s/%s", p, name);
		put_file(f, "partial");
		_exit(0);
	}
	CHECK(child > 0 && waitpid(child, NULL, 0) == child);
	char *other = tpath("co/tmp/1700000000.R123.neomutt");
	put_file(other, "x");
	CHECK(!maildir_name_ours("1700000000.R123.neomutt", &pid));
	char *dir = tpath("co/tmp");
	CHECK_INT(count_entries(dir), 3);
	size_t removed = 0;
	CHECK_INT(maildir_clean_tmp(m, MAILDIR_TMP_MAX_AGE, &removed, NULL), 0);
	CHECK_INT(removed, 1);
	CHECK_INT(count_entries(dir), 2);
	CHECK(exists(other));
	maildir_batch_free(&b);
	free(other);
	free(dir);
	maildir_free(&m);
}

/* ---- flag changes and removal ---- */

static void test_set_flags(void)
{
	struct maildir *m = fresh_maildir("f", "Flags");
	bool in_new;
	char *f = deliver_text(m, "A: b\n\nx\n", 0, NULL, &in_new), *g = NULL;
	struct err e = {0};
	CHECK_INT(maildir_set_flags(m, true, f, FLAG_SEEN, &g, &in_new, &e), 0);
	CHECK(!in_new && strstr(g, ":2,S"));
	char *p = xasprintf("%s/f/cur/%s", tmproot, g);
	CHECK(exists(p));
	free(p);
	free(f);
	/* Unread again: back to new/ without any info. */
	CHECK_INT(maildir_set_flags(m, false, g, 0, &f, &in_new, &e), 0);
	CHECK(in_new && !strchr(f, ':'));
	free(g);
	/* Flagged while unread: new/ with ":2,F", as neomutt does. */
	CHECK_INT(maildir_set_flags(m, true, f, FLAG_FLAGGED, &g, &in_new, &e), 0);
	CHECK(in_new && strstr(g, ":2,F"));
	free(f);
	/* No change: the same name, nothing renamed. */
	CHECK_INT(maildir_set_flags(m, true, g, FLAG_FLAGGED, &f, &in_new, &e), 0);
	CHECK_STR(f, g);
	CHECK(in_new);
	free(f);
	free(g);
	CHECK_INT(maildir_flush(m, &e), 0);

	/* Unknown letters and the ';' spelling: kept, and ':' written. */
	put_msg("f", "cur", "900.x.h;2,Sab");
	CHECK_INT(
	    maildir_set_flags(m, false, "900.x.h;2,Sab", FLAG_SEEN | FLAG_REPLIED, &f, &in_new, &e),
	    0);
	CHECK_STR(f, "900.x.h:2,RSab");
	CHECK(!in_new);
	/* A reader renamed it meanwhile: a distinct error, nothing touched. */
	char *from = xasprintf("%s/f/cur/%s", tmproot, f);
	char *to = xasprintf("%s/f/cur/900.x.h:2,FRSab", tmproot);
	CHECK_INT(rename(from, to), 0);
	memset(&e, 0, sizeof(e));
	CHECK_INT(maildir_set_flags(m, false, f, FLAG_SEEN, &g, &in_new, &e), -ENOENT);
	CHECK(g == NULL);
	CHECK(strstr(e.msg, "Flags: ") == e.msg && strstr(e.msg, "renamed or removed") != NULL);
	CHECK(exists(to));
	/* The target name exists already (the same message twice). */
	put_msg("f", "new", "900.x.h:2,Fab");
	CHECK_INT(maildir_set_flags(m, false, "900.x.h:2,FRSab", FLAG_FLAGGED, &g, &in_new, &e),
	          -EEXIST);
	CHECK_INT(maildir_set_flags(m, false, "900.x.h:2,FRSa", FLAG_FLAGGED, &g, &in_new, &e),
	          -ENOENT);
	CHECK_INT(maildir_set_flags(m, false, "../x", FLAG_FLAGGED, &g, &in_new, &e), -EINVAL);
	free(f);
	free(from);

	/* Removal, then the same again. */
	CHECK_INT(maildir_remove(m, false, "900.x.h:2,FRSab", &e), 0);
	CHECK(!exists(to));
	CHECK_INT(maildir_remove(m, false, "900.x.h:2,FRSab", &e), -ENOENT);
	CHECK(strstr(e.msg, "renamed or removed") != NULL);
	CHECK_INT(maildir_remove(m, false, "../../etc", &e), -EINVAL);
	CHECK_INT(maildir_remove(m, true, ".hidden", &e), -EINVAL);
	CHECK_INT(maildir_flush(m, &e), 0);
	free(to);
	maildir_free(&m);
}

/* ---- message identity ---- */

static void ident_of(const char *msg, size_t len, struct maildir_ident *id)
{
	struct maildir_digest *d = maildir_digest_new();
	maildir_digest_feed(d, msg, len);
	maildir_digest_end(d, id);
	maildir_digest_free(&d);
	CHECK(d == NULL);
}

static void ident_bytewise(const char *msg, size_t len, struct maildir_ident *id)
{
	struct maildir_digest *d = maildir_digest_new();
	for (size_t i = 0; i < len; i++)
		maildir_digest_feed(d, msg + i, 1);
	maildir_digest_end(d, id);
	maildir_digest_free(&d);
}

static bool same_ident(const struct maildir_ident *a, const struct maildir_ident *b)
{
	return strcmp(a->message_id, b->message_id) == 0 &&
	       memcmp(a->body_hash, b->body_hash, MAILDIR_HASH_LEN) == 0;
}

#define IDENT(s, id) ident_of(s, sizeof(s) - 1, id)

static void test_digest(void)
{
	static const char orig[] = "Return-Path: <a@example.org>\r\n"
	                           "Message-ID: <abc.123@Example.ORG>\r\n"
	                           "Subject: hello\r\n"
	                           "Status: RO\r\n"
	                           "X-Status: A\r\n"
	                           "\r\n"
	                           "Hi,\r\n"
	                           "\r\n"
	                           "the body.  \r\n"
	                           "-- \r\n"
	                           "me\r\n";
	/* neomutt's save: Status/X-Status dropped, Content-Length added at the
	 * end of the header, the header rewritten with LF (Message-ID folded
	 * here, as another writer might), the body's CRLF partly left, and an
	 * extra newline at the end. */
	static const char saved[] = "Return-Path: <a@example.org>\n"
	                            "Message-Id:\n"
	                            "\t<abc.123@Example.ORG>  \n"
	                            "Subject: hello\n"
	                            "Content-Length: 29\n"
	                            "\n"
	                            "Hi,\r\n"
	                            "\n"
	                            "the body.  \n"
	                            "-- \r\n"
	                            "me\n"
	                            "\n";
	struct maildir_ident a, b, c;
	IDENT(orig, &a);
	IDENT(saved, &b);
	CHECK_STR(a.message_id, "<abc.123@Example.ORG>");
	CHECK(same_ident(&a, &b));
	ident_bytewise(orig, sizeof(orig) - 1, &c);
	CHECK(same_ident(&a, &c));
	ident_bytewise(saved, sizeof(saved) - 1, &c);
	CHECK(same_ident(&a, &c));
	/* A different body, even by one character or an inner space, differs. */
	IDENT("Message-ID: <abc.123@Example.ORG>\n\nHi,\n\nthe body. \n-- \nme\n", &c);
	CHECK(strcmp(a.message_id, c.message_id) == 0);
	CHECK(memcmp(a.body_hash, c.body_hash, MAILDIR_HASH_LEN) != 0);
	IDENT("Message-ID: <abc.123@Example.ORG>\n\nHi,\n\nthe body.  \n-- \nMe\n", &c);
	CHECK(memcmp(a.body_hash, c.body_hash, MAILDIR_HASH_LEN) != 0);
	/* Known answer: the body "hello" hashes as SHA-256("hello"). */
	IDENT("Subject: x\n\nhello\n\n \t\r\n", &c);
	char hex[2 * MAILDIR_HASH_LEN + 1];
	maildir_ident_hash_hex(&c, hex);
	CHECK_STR(hex, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	CHECK_STR(c.message_id, "");
	/* No body at all, or only white space: the empty body. */
	IDENT("Subject: x\n", &b);
	IDENT("Subject: x\r\n\r\n\r\n  \n", &c);
	CHECK(same_ident(&b, &c));
	maildir_ident_hash_hex(&b, hex);
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* The first Message-ID counts; a lone CR in the body is kept. */
	IDENT("message-id : <one>\nMessage-ID: <two>\n\na\rb\n", &b);
	CHECK_STR(b.message_id, "<one>");
	IDENT("X: y\n\nab\n", &c);
	CHECK(memcmp(b.body_hash, c.body_hash, MAILDIR_HASH_LEN) != 0);
	/* Not a Message-ID: longer names, names in the body. */
	IDENT("Message-IDs: <x>\nX-Message-ID: <y>\n\nMessage-ID: <z>\n", &b);
	CHECK_STR(b.message_id, "");
}

/* White space runs longer than the digest holds back, inside and at the end. */
static void test_digest_long_space(void)
{
	enum { SPACE = 10000 };
	char *m1 = xmalloc(SPACE + 100), *m2 = xmalloc(3 * SPACE + 100);
	int n1 = sprintf(m1, "M: 1\n\nstart");
	memset(m1 + n1, ' ', SPACE);
	n1 += SPACE;
	n1 += sprintf(m1 + n1, "end");
	int n2 = sprintf(m2, "M: 1\n\nstart");
	memset(m2 + n2, ' ', SPACE);
	n2 += SPACE;
	n2 += sprintf(m2 + n2, "end");
	for (int i = 0; i < SPACE; i++)
		m2[n2++] = i % 2 ? '\n' : '\r';
	struct maildir_ident a, b, c;
	ident_of(m1, (size_t)n1, &a);
	ident_of(m2, (size_t)n2, &b);
	ident_bytewise(m2, (size_t)n2, &c);
	CHECK(same_ident(&a, &b));
	CHECK(same_ident(&a, &c));
	/* Fewer inner spaces: a different body. */
	ident_of(m1, (size_t)n1 - 4, &b);
	m1[n1 - 4] = 'X';
	ident_of(m1, (size_t)n1, &c);
	CHECK(memcmp(a.body_hash, c.body_hash, MAILDIR_HASH_LEN) != 0);
	free(m1);
	free(m2);
}

/* ---- reading for uploads ---- */

static void test_msgfile(void)
{
	struct maildir *m = fresh_maildir("r", "Read");
	static const char text[] = "Message-ID: <r@x>\nA: b\r\n\r\nline\nline\r\n\n\rx\n";
	static const char crlf[] = "Message-ID: <r@x>\r\nA: b\r\n\r\nline\r\nline\r\n\r\n\rx\r\n";
	bool in_new;
	char *f = deliver_text(m, text, FLAG_SEEN, NULL, &in_new);
	struct maildir_msg *r = NULL;
	struct err e = {0};
	CHECK_INT(maildir_msg_open(&r, m, in_new, f, &e), 0);
	CHECK_INT(maildir_msg_size(r), sizeof(text) - 1);
	struct maildir_ident id, want;
	uint64_t crlf_size = 0;
	CHECK_INT(maildir_msg_inspect(r, &id, &crlf_size, &e), 0);
	CHECK_INT(crlf_size, sizeof(crlf) - 1);
	IDENT(text, &want);
	CHECK(same_ident(&id, &want));
	CHECK_STR(id.message_id, "<r@x>");
	/* Every buffer size gives the same bytes, raw and converted. */
	static const size_t sizes[] = {2, 3, 5, 7, 4096};
	char out[sizeof(crlf) + 16];
	for (size_t k = 0; k < ARRAY_SIZE(sizes); k++) {
		for (int mode = 0; mode < 2; mode++) {
			maildir_msg_rewind(r);
			size_t len = 0;
			ssize_t n;
			while ((n = maildir_msg_read(r, out + len, sizes[k], mode, &e)) > 0)
				len += (size_t)n;
			CHECK_INT(n, 0);
			const char *expect = mode ? crlf : text;
			CHECK_INT(len, strlen(expect));
			CHECK(memcmp(out, expect, len) == 0);
		}
	}
	maildir_msg_free(&r);
	CHECK(r == NULL);
	/* The file shrinks under the reader: an error, never a short literal. */
	CHECK_INT(maildir_msg_open(&r, m, in_new, f, &e), 0);
	CHECK_INT(maildir_msg_inspect(r, NULL, &crlf_size, &e), 0);
	char *p = xasprintf("%s/r/cur/%s", tmproot, f);
	CHECK_INT(truncate(p, 10), 0);
	ssize_t n = maildir_msg_read(r, out, sizeof(out), true, &e);
	CHECK(n > 0);
	CHECK_INT(maildir_msg_read(r, out, sizeof(out), true, &e), -EIO);
	CHECK(strstr(e.msg, "changed while being read") != NULL);
	maildir_msg_rewind(r);
	CHECK(maildir_msg_read(r, out, 4, false, &e) == 4);
	CHECK_INT(maildir_msg_read(r, out, sizeof(out), false, &e), 6);
	CHECK_INT(maildir_msg_read(r, out, sizeof(out), false, &e), -EIO);
	CHECK_INT(maildir_msg_inspect(r, NULL, NULL, &e), -EIO);
	maildir_msg_free(&r);
	free(p);
	/* Gone, or not a message name. */
	CHECK_INT(maildir_msg_open(&r, m, true, f, &e), -ENOENT);
	CHECK(strstr(e.msg, "renamed or removed") != NULL);
	CHECK_INT(maildir_msg_open(&r, m, false, "../x", &e), -EINVAL);
	CHECK(r == NULL);
	free(f);
	maildir_free(&m);
}

int main(void)
{
	snprintf(tmproot, sizeof(tmproot), "/tmp/mf-maildir-XXXXXX");
	if (!mkdtemp(tmproot)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_deliver_big); /* first: it measures the memory high-water mark */
	RUN(test_flags_maildir);
	RUN(test_flags_imap);
	RUN(test_name_parse);
	RUN(test_name_build);
	RUN(test_name_unique);
	RUN(test_path_verbatim);
	RUN(test_path_plusplus);
	RUN(test_path_reverse);
	RUN(test_special_use);
	RUN(test_tree_verbatim);
	RUN(test_tree_plusplus);
	RUN(test_ensure);
	RUN(test_scan);
	RUN(test_scan_dups);
	RUN(test_scan_keep);
	RUN(test_stamp);
	RUN(test_deliver_placement);
	RUN(test_deliver_batch);
	RUN(test_deliver_enospc);
	RUN(test_deliver_killed);
	RUN(test_clean_tmp);
	RUN(test_clean_orphaned_deliveries);
	RUN(test_set_flags);
	RUN(test_digest);
	RUN(test_digest_long_space);
	RUN(test_msgfile);
	rm_rf(tmproot);
	CHECK_DONE();
}
