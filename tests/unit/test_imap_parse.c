/* The IMAP response parser: every input is fed whole, byte by byte and split
 * at random (seeded) points, and must give the same trees, the same sink
 * bytes and the same error. */
#include "check.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "imap/parse.h"
#include "imap/quote.h"

#include <errno.h>
#include <stdbool.h>

/* A sink that keeps what it is given, for comparison. */
struct tsink {
	const char *only;    /* open only for this item (NULL: every literal) */
	uint64_t fail_after; /* write fails once this many bytes arrived (0: never) */
	int opened, aborted, writes;
	struct buf data[8]; /* bytes per handle */
	char items[8][64];
	uint64_t sizes[8];
	bool abort_seen[8];
};

static void *ts_open(void *ctx, const struct imap_response *partial, const char *item,
		     uint64_t size)
{
	struct tsink *t = ctx;
	if (t->only && (!item || strcmp(item, t->only) != 0))
		return NULL;
	BUG_ON(t->opened >= 8);
	CHECK(partial->name != NULL || partial->kind != IMAP_RESP_UNTAGGED);
	snprintf(t->items[t->opened], sizeof(t->items[0]), "%s", item ? item : "(null)");
	t->sizes[t->opened] = size;
	buf_reset(&t->data[t->opened]);
	t->opened++;
	return &t->data[t->opened - 1];
}

static int ts_write(void *ctx, void *handle, const char *p, size_t n)
{
	struct tsink *t = ctx;
	struct buf *b = handle;
	t->writes++;
	CHECK(n > 0);
	if (t->fail_after && b->len + n >= t->fail_after)
		return -ENOSPC;
	buf_append(b, p, n);
	return 0;
}

static void ts_abort(void *ctx, void *handle)
{
	struct tsink *t = ctx;
	size_t i = (size_t)((struct buf *)handle - t->data);
	CHECK(!t->abort_seen[i]);
	t->abort_seen[i] = true;
	t->aborted++;
}

static void ts_free(struct tsink *t)
{
	for (size_t i = 0; i < ARRAY_SIZE(t->data); i++)
		buf_free(&t->data[i]);
}

static struct imap_sink sink_of(struct tsink *t)
{
	return (struct imap_sink){ ts_open, ts_write, ts_abort, t };
}

static uint32_t rnd(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

/* chunk: 0 whole, 1 byte by byte, otherwise a seed for random splits.
 * Returns one line per response (imap_response_format) and, on failure,
 * "ERR <message>"; sink contents are appended as "<item>=<bytes>". */
static char *run_mode(const char *in, size_t len, uint32_t chunk, const struct imap_limits *lim,
		      struct tsink *t)
{
	struct imap_reader *r = imap_reader_new(lim);
	struct buf out = { 0 };
	struct imap_sink s;
	if (t) {
		s = sink_of(t);
		imap_reader_set_sink(r, &s);
	}
	size_t pos = 0;
	uint32_t seed = chunk;
	while (pos < len) {
		size_t n = len - pos;
		if (chunk == 1)
			n = 1;
		else if (chunk > 1 && n > 1)
			n = 1 + rnd(&seed) % (n < 64 ? n : 64);
		size_t off = 0;
		while (off < n) {
			size_t used;
			enum parse_res res = imap_reader_feed(r, in + pos + off, n - off, &used);
			off += used;
			if (res == PARSE_ERR) {
				buf_printf(&out, "ERR %s\n", imap_reader_err(r)->msg);
				goto done;
			}
			if (res == PARSE_MORE) {
				CHECK_INT(off, n);
				break;
			}
			struct imap_response *resp = imap_reader_take(r);
			CHECK(resp != NULL);
			CHECK(imap_reader_take(r) == NULL);
			imap_response_format(&out, resp);
			buf_putc(&out, '\n');
			imap_response_free(&resp);
		}
		pos += n;
	}
done:
	if (t)
		for (int i = 0; i < t->opened; i++)
			buf_printf(&out, "%s=%s\n", t->items[i], buf_str(&t->data[i]));
	imap_reader_free(&r);
	return buf_steal(&out);
}

/* Parses in every way and checks all agree with the whole-input result,
 * which must equal want. */
static void expect_lim(const char *in, size_t len, const char *want, const struct imap_limits *lim,
		       const char *sink_item)
{
	/* sink_item "*": the sink takes every literal. */
	const char *only = sink_item && strcmp(sink_item, "*") ? sink_item : NULL;
	struct tsink t0 = { .only = only };
	char *whole = run_mode(in, len, 0, lim, sink_item ? &t0 : NULL);
	if (strcmp(whole, want) != 0)
		fprintf(stderr, "input:\n%.*s\n", (int)(len < 300 ? len : 300), in);
	CHECK_STR(whole, want);
	CHECK_INT(t0.opened, t0.aborted);
	for (uint32_t mode = 1; mode < 12; mode++) {
		struct tsink t = { .only = only };
		char *got =
		    run_mode(in, len, mode == 1 ? 1 : mode * 7919, lim, sink_item ? &t : NULL);
		if (strcmp(got, whole) != 0)
			fprintf(stderr, "chunking %u differs\n", mode);
		CHECK_STR(got, whole);
		CHECK_INT(t.opened, t.aborted);
		free(got);
		ts_free(&t);
	}
	free(whole);
	ts_free(&t0);
}

static void expect(const char *in, const char *want)
{
	expect_lim(in, strlen(in), want, &imap_limits_after_login, NULL);
}

/* in with every "@" replaced by "\r\n", so cases stay readable. */
static void expect_crlf(const char *in, const char *want)
{
	struct buf b = { 0 };
	for (const char *p = in; *p; p++)
		if (*p == '@')
			buf_puts(&b, "\r\n");
		else
			buf_putc(&b, *p);
	expect_lim(b.data, b.len, want, &imap_limits_after_login, NULL);
	buf_free(&b);
}

/* Parses exactly one response from in, whole. */
static struct imap_response *parse1(const char *in, struct imap_reader *r)
{
	size_t used;
	enum parse_res res = imap_reader_feed(r, in, strlen(in), &used);
	CHECK_INT(res, PARSE_DONE);
	CHECK_INT(used, strlen(in));
	return imap_reader_take(r);
}

static void test_rfc3501_session(void)
{
	const char *header = "Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
			     "From: Terry Gray <gray@cac.washington.edu>\r\n"
			     "Subject: IMAP4rev1 WG mtg summary and minutes\r\n\r\n";
	struct buf in = { 0 };
	buf_puts(&in, "* OK IMAP4rev1 Service Ready\r\n"
		      "* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI\r\n"
		      "a001 OK CAPABILITY completed\r\n"
		      "* 18 EXISTS\r\n"
		      "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
		      "* 2 RECENT\r\n"
		      "* OK [UNSEEN 17] Message 17 is the first unseen message\r\n"
		      "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
		      "a002 OK [READ-WRITE] SELECT completed\r\n"
		      "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
		      "RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
		      "\"IMAP4rev1 WG mtg summary and minutes\" "
		      "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		      "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		      "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
		      "((NIL NIL \"imap\" \"cac.washington.edu\")) "
		      "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")"
		      "(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
		      "\"<B27397-0100000@cac.washington.edu>\") "
		      "BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 "
		      "92))\r\n"
		      "a003 OK FETCH completed\r\n");
	buf_printf(&in, "* 27 FETCH (BODY[HEADER] {%zu}\r\n%s)\r\n", strlen(header), header);
	buf_puts(&in, "a004 OK FETCH completed\r\n"
		      "* 12 FETCH (FLAGS (\\Seen \\Deleted))\r\n"
		      "a005 OK +FLAGS completed\r\n"
		      "* BYE IMAP4rev1 server terminating connection\r\n"
		      "a006 OK LOGOUT completed\r\n");
	const char *want =
	    "* OK IMAP4rev1 Service Ready\n"
	    "* CAPABILITY IMAP4rev1 STARTTLS AUTH=GSSAPI\n"
	    "a001 OK CAPABILITY completed\n"
	    "* 18 EXISTS\n"
	    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\n"
	    "* 2 RECENT\n"
	    "* OK [UNSEEN 17] Message 17 is the first unseen message\n"
	    "* OK [UIDVALIDITY 3857529045] UIDs valid\n"
	    "a002 OK [READ-WRITE] SELECT completed\n"
	    "* 12 FETCH (FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
	    "RFC822.SIZE 4286 ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" "
	    "\"IMAP4rev1 WG mtg summary and minutes\" "
	    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) "
	    "((NIL NIL \"imap\" \"cac.washington.edu\")) "
	    "((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\") "
	    "(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL "
	    "\"<B27397-0100000@cac.washington.edu>\") "
	    "BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\n"
	    "a003 OK FETCH completed\n"
	    "* 27 FETCH (BODY[HEADER] \"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\\x0d\\x0a"
	    "From: Terry Gray <gray@cac.washington.edu>\\x0d\\x0a"
	    "Subject: IMAP4rev1 WG mtg summary and minutes\\x0d\\x0a\\x0d\\x0a\")\n"
	    "a004 OK FETCH completed\n"
	    "* 12 FETCH (FLAGS (\\Seen \\Deleted))\n"
	    "a005 OK +FLAGS completed\n"
	    "* BYE IMAP4rev1 server terminating connection\n"
	    "a006 OK LOGOUT completed\n";
	expect_lim(in.data, in.len, want, &imap_limits_after_login, NULL);
	/* The same with the header streamed to a sink. */
	char *want_sink = xasprintf("%.*s* 27 FETCH (BODY[HEADER] <sink %zu>)\n%sBODY[HEADER]=%s\n",
				    (int)(strstr(want, "* 27 FETCH") - want), want, strlen(header),
				    strstr(want, "a004"), header);
	expect_lim(in.data, in.len, want_sink, &imap_limits_after_login, "BODY[HEADER]");
	free(want_sink);
	buf_free(&in);
}

static void test_rfc9051_data(void)
{
	expect_crlf(
	    "* OK [CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI LOGINDISABLED] Server ready@",
	    "* OK [CAPABILITY IMAP4rev2 STARTTLS AUTH=GSSAPI LOGINDISABLED] Server ready\n");
	expect_crlf("* LIST () \"/\" blurdybloop@* LIST (\\Noselect) \"/\" foo@"
		    "* LIST () \".\" \"INBOX.Sent\"@* LIST (\\HasNoChildren) NIL INBOX@"
		    "* LSUB () \".\" #news.comp.mail.misc@",
		    "* LIST () \"/\" blurdybloop\n* LIST (\\Noselect) \"/\" foo\n"
		    "* LIST () \".\" \"INBOX.Sent\"\n* LIST (\\HasNoChildren) NIL INBOX\n"
		    "* LSUB () \".\" #news.comp.mail.misc\n");
	expect_crlf("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)@",
		    "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292)\n");
	expect_crlf("* SEARCH 2 84 882@* SEARCH@* SEARCH @* SEARCH 2 84 (MODSEQ 917162500)@",
		    "* SEARCH 2 84 882\n* SEARCH\n* SEARCH\n* SEARCH 2 84 (MODSEQ 917162500)\n");
	expect_crlf(
	    "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3@* ESEARCH (TAG \"A283\") UID ALL 2,10:11@",
	    "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\n"
	    "* ESEARCH (TAG \"A283\") UID ALL 2,10:11\n");
	expect_crlf(
	    "* ENABLED CONDSTORE QRESYNC@* VANISHED (EARLIER) 1:3,5@* VANISHED 405,407@",
	    "* ENABLED CONDSTORE QRESYNC\n* VANISHED (EARLIER) 1:3,5\n* VANISHED 405,407\n");
	expect_crlf("* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\")"
		    "(\"#public/\" \"/\"))@",
		    "* NAMESPACE ((\"\" \"/\")) ((\"~\" \"/\")) ((\"#shared/\" \"/\") "
		    "(\"#public/\" \"/\"))\n");
	expect_crlf("* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" NIL)@* ID NIL@",
		    "* ID (\"name\" \"Cyrus\" \"version\" \"1.5\" \"os\" NIL)\n* ID NIL\n");
	expect_crlf("* QUOTA \"\" (STORAGE 10 512)@* QUOTAROOT INBOX \"\"@",
		    "* QUOTA \"\" (STORAGE 10 512)\n* QUOTAROOT INBOX \"\"\n");
	expect_crlf("* METADATA \"INBOX\" (/private/comment \"My own comment\")@",
		    "* METADATA \"INBOX\" (/private/comment \"My own comment\")\n");
	expect_crlf("* THREAD (2)(3 6 (4 23)(44 7 96))@", "* THREAD (2) (3 6 (4 23) (44 7 96))\n");
	expect_crlf("* XAPPLEPUSHSERVICE aps-version 2 [x] ~/Mail nil@",
		    "* XAPPLEPUSHSERVICE aps-version 2 [x] ~/Mail NIL\n");
	expect_crlf("* 23 EXISTS@* 5 EXPUNGE@* 0 RECENT@",
		    "* 23 EXISTS\n* 5 EXPUNGE\n* 0 RECENT\n");
}

static void test_select_codes(void)
{
	expect_crlf("* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited@"
		    "* OK [UIDNEXT 4392] Predicted next UID@"
		    "* OK [HIGHESTMODSEQ 715194045007] Highest@"
		    "* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences@"
		    "* OK [CLOSED]@"
		    "A142 OK [READ-ONLY] EXAMINE completed@"
		    "* NO [ALERT] System shutdown in 10 minutes@"
		    "* OK [MODIFIED 7,9] x@",
		    "* OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] Limited\n"
		    "* OK [UIDNEXT 4392] Predicted next UID\n"
		    "* OK [HIGHESTMODSEQ 715194045007] Highest\n"
		    "* OK [NOMODSEQ] Sorry, this mailbox format doesn't support modsequences\n"
		    "* OK [CLOSED]\n"
		    "A142 OK [READ-ONLY] EXAMINE completed\n"
		    "* NO [ALERT] System shutdown in 10 minutes\n"
		    "* OK [MODIFIED 7,9] x\n");

	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	struct imap_response *resp = parse1("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n", r);
	uint64_t u;
	CHECK(resp->kind == IMAP_RESP_UNTAGGED && resp->status == IMAP_STATUS_OK);
	CHECK_STR(resp->name, "OK");
	CHECK(imap_response_code_is(resp, "uidvalidity"));
	CHECK_INT(resp->ncode_args, 1);
	CHECK(imap_value_number(&resp->code_args[0], &u) && u == 3857529045u);
	CHECK_STR(resp->text, "UIDs valid");
	CHECK(resp->tag == NULL && resp->args == NULL && resp->nargs == 0);
	imap_response_free(&resp);

	resp = parse1("a OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n", r);
	CHECK(resp->kind == IMAP_RESP_TAGGED);
	CHECK_STR(resp->tag, "a");
	CHECK_STR(resp->code, "COPYUID");
	CHECK_INT(resp->ncode_args, 3);
	CHECK_STR(imap_value_astring(&resp->code_args[1], NULL), "304,319:320");
	CHECK_STR(imap_value_astring(&resp->code_args[2], NULL), "3956:3958");
	imap_response_free(&resp);

	resp = parse1("a OK [APPENDUID 38505 3955] APPEND completed\r\n", r);
	CHECK(imap_value_number(&resp->code_args[1], &u) && u == 3955);
	CHECK_STR(imap_value_astring(&resp->code_args[1], NULL), "3955");
	imap_response_free(&resp);

	resp = parse1("* ok [read-write]\r\n", r);
	CHECK_STR(resp->code, "READ-WRITE");
	CHECK_STR(resp->text, "");
	CHECK(resp->code_args == NULL && resp->ncode_args == 0);
	imap_response_free(&resp);

	resp = parse1("* OK [CAPABILITY IMAP4rev1 LITERAL+ SASL-IR] ready\r\n", r);
	CHECK_INT(resp->ncode_args, 3);
	CHECK(imap_value_atom_eq(&resp->code_args[1], "literal+"));
	imap_response_free(&resp);
	imap_reader_free(&r);
}

static void test_status_responses(void)
{
	expect_crlf("A2 NO [TRYCREATE] Mailbox doesn't exist@A3 BAD [PARSE] Command unknown@"
		    "A4 NO [OVERQUOTA]@A5 NO [AUTHENTICATIONFAILED] Authentication failed@"
		    "A6 NO [UNAVAILABLE] later@A7 NO [LIMIT] too many@"
		    "* BYE [UNAVAILABLE] Shutting down@* PREAUTH IMAP4rev1 logged in@"
		    "* OK@* OK @* NO@A8 OK@* OK [THROTTLED] slow down@",
		    "A2 NO [TRYCREATE] Mailbox doesn't exist\nA3 BAD [PARSE] Command unknown\n"
		    "A4 NO [OVERQUOTA]\nA5 NO [AUTHENTICATIONFAILED] Authentication failed\n"
		    "A6 NO [UNAVAILABLE] later\nA7 NO [LIMIT] too many\n"
		    "* BYE [UNAVAILABLE] Shutting down\n* PREAUTH IMAP4rev1 logged in\n"
		    "* OK\n* OK\n* NO\nA8 OK\n* OK [THROTTLED] slow down\n");
	/* Text is never a literal, and brackets in the text are text. */
	expect_crlf("A1 OK done {5}@A2 NO [SERVERBUG] Internal error [2024-01-01 12:00:00]@",
		    "A1 OK done {5}\nA2 NO [SERVERBUG] Internal error [2024-01-01 12:00:00]\n");
	/* Tags with odd (but legal) characters. */
	expect_crlf("a.b-c]_1 OK x@A!#$&'1 NO y@", "a.b-c]_1 OK x\nA!#$&'1 NO y\n");
	/* Escapes in quoted strings, also inside sections. */
	expect_crlf(
	    "* LIST () \"\\\\\" \"a\\\"b\\\\c\"@* 1 FETCH (BODY[HEADER.FIELDS (\"a\\\"]\")] NIL)@",
	    "* LIST () \"\\\\\" \"a\\\"b\\\\c\"\n"
	    "* 1 FETCH (BODY[HEADER.FIELDS (\"a\\\"]\")] NIL)\n");
	expect_crlf("* LIST () \"abc\\@", "ERR unterminated quoted string at offset 10 in "
					  "response line \"* LIST () \"abc\\\"\n");
	expect_crlf("* OK\"x\"@",
		    "ERR unexpected '\"' at offset 4 in response line \"* OK\"x\"\"\n");
	/* Code arguments that are not values are kept as one string. */
	expect_crlf("* OK [X {5}] y@", "* OK [X \"{5}\"] y\n");
	expect_crlf("* NO [BADURL \"unterminated] text@* OK [REFERRAL imap://a;AUTH=*;b/] x@"
		    "* OK [X-FOO(bar)] y@",
		    "* NO [BADURL \"\\\"unterminated\"] text\n"
		    "* OK [REFERRAL imap://a;AUTH=*;b/] x\n* OK [X-FOO \"(bar)\"] y\n");
}

static void test_continuation(void)
{
	expect_crlf("+ Ready for additional command text@+@+ @"
		    "+ YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzmeTxPJ@+ [ALERT] hi@",
		    "+ Ready for additional command text\n+\n+\n"
		    "+ YGgGCSqGSIb3EgECAgIBAAD/////6jcyG4GE3KkTzmeTxPJ\n+ [ALERT] hi\n");
	struct imap_reader *r = imap_reader_new(&imap_limits_before_login);
	struct imap_response *resp = parse1("+ dGVzdA==\r\n", r);
	CHECK(resp->kind == IMAP_RESP_CONTINUE);
	CHECK(resp->name == NULL && resp->code == NULL);
	CHECK_STR(resp->text, "dGVzdA==");
	imap_response_free(&resp);
	imap_reader_free(&r);
}

static void test_fetch(void)
{
	const char *in = "* 1 FETCH (UID 42 MODSEQ (18446744073709551615) FLAGS (\\Seen $Forwarded)"
			 " INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 5"
			 " BODY[] {5}\r\nhello)\r\n";
	expect(in, "* 1 FETCH (UID 42 MODSEQ (18446744073709551615) FLAGS (\\Seen $Forwarded) "
		   "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 5 BODY[] \"hello\")\n");
	expect_lim(in, strlen(in),
		   "* 1 FETCH (UID 42 MODSEQ (18446744073709551615) FLAGS (\\Seen $Forwarded) "
		   "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 5 BODY[] <sink 5>)\n"
		   "BODY[]=hello\n",
		   &imap_limits_after_login, "BODY[]");

	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	struct imap_response *resp = parse1(in, r);
	uint64_t u;
	size_t len, n;
	const struct imap_value *items;
	CHECK(resp->has_number && resp->number == 1);
	CHECK_STR(resp->name, "FETCH");
	CHECK(imap_value_number(imap_response_fetch(resp, "uid"), &u) && u == 42);
	CHECK(imap_value_list(imap_response_fetch(resp, "MODSEQ"), &items, &n) && n == 1);
	CHECK(imap_value_number(&items[0], &u) && u == UINT64_MAX);
	CHECK(imap_value_list(imap_response_fetch(resp, "FLAGS"), &items, &n) && n == 2);
	CHECK(imap_value_atom_eq(&items[0], "\\seen"));
	CHECK_STR(imap_value_atom(&items[1]), "$Forwarded");
	CHECK_STR(imap_value_string(imap_response_fetch(resp, "INTERNALDATE"), NULL),
		  "17-Jul-1996 02:44:25 -0700");
	CHECK_STR(imap_value_string(imap_response_fetch(resp, "BODY[]"), &len), "hello");
	CHECK_INT(len, 5);
	CHECK(imap_response_fetch(resp, "BODY[TEXT]") == NULL);
	/* Values are not taken for names: "5" after RFC822.SIZE is no key. */
	CHECK(imap_response_fetch(resp, "5") == NULL);
	CHECK_STR(imap_response_line(resp),
		  "* 1 FETCH (UID 42 MODSEQ (18446744073709551615) FLAGS (\\Seen $Forwarded) "
		  "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 5 BODY[] {5})");
	imap_response_free(&resp);

	resp = parse1("* 3 OK FETCH\r\n", r);
	CHECK(imap_response_fetch(resp, "UID") == NULL);
	CHECK(resp->status == IMAP_STATUS_NONE && resp->has_number);
	imap_response_free(&resp);
	imap_reader_free(&r);
}

static void test_sections(void)
{
	struct buf in = { 0 };
	buf_puts(&in, "* 2 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID \"X]\")] {17}\r\n"
		      "Message-ID: <a>\r\n BODY[]<0> {3}\r\nabc BINARY[1.2] ~{2}\r\n");
	buf_append(&in, "\0\x01", 2);
	buf_puts(&in, " BODY[1.MIME] NIL BINARY.SIZE[1] 1234 body[text] \"\")\r\n");
	expect_lim(
	    in.data, in.len,
	    "* 2 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID \"X]\")] \"Message-ID: <a>\\x0d\\x0a\" "
	    "BODY[]<0> \"abc\" BINARY[1.2] \"\\x00\\x01\" BODY[1.MIME] NIL BINARY.SIZE[1] "
	    "1234 body[text] \"\")\n",
	    &imap_limits_after_login, NULL);

	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	size_t used, len;
	CHECK_INT(imap_reader_feed(r, in.data, in.len, &used), PARSE_DONE);
	struct imap_response *resp = imap_reader_take(r);
	const char *s = imap_value_string(imap_response_fetch(resp, "BINARY[1.2]"), &len);
	CHECK(s && len == 2 && s[0] == 0 && s[1] == 1);
	CHECK(imap_value_is_nil(imap_response_fetch(resp, "BODY[1.MIME]")));
	CHECK(imap_response_fetch(resp, "BODY[TEXT]") != NULL);
	const char *ns;
	CHECK(imap_value_nstring(imap_response_fetch(resp, "BODY[1.MIME]"), &ns, NULL) && !ns);
	CHECK(imap_value_nstring(imap_response_fetch(resp, "BODY[]<0>"), &ns, &len) && len == 3);
	imap_response_free(&resp);
	imap_reader_free(&r);
	buf_free(&in);

	/* Brackets elsewhere are plain atom characters. */
	expect_crlf("* LIST () \"/\" [Gmail]/Spam@* LIST () \"/\" foo[bar baz@",
		    "* LIST () \"/\" [Gmail]/Spam\n* LIST () \"/\" foo[bar baz\n");
	expect_crlf("* LIST () \"/\" BODY[x y]@* STATUS BODY[a (MESSAGES 1)@",
		    "* LIST () \"/\" BODY[x y]\n* STATUS BODY[a (MESSAGES 1)\n");
	/* Without its ']' a section is no section. */
	expect_crlf("* 1 FETCH (BODY[HEADER.FIELDS (X) 1)@",
		    "* 1 FETCH (BODY[HEADER.FIELDS (X) 1)\n");
}

static void test_literals(void)
{
	expect_crlf("* 1 FETCH (BODY[] {0}@)@* LIST () \"/\" {5}@INBOX@",
		    "* 1 FETCH (BODY[] \"\")\n* LIST () \"/\" \"INBOX\"\n");
	/* {n+} and literals inside nested lists, a literal at the end. */
	expect_crlf("* 1 FETCH (ENVELOPE (NIL {3+}@a\"b NIL) X {2}@())@",
		    "* 1 FETCH (ENVELOPE (NIL \"a\\\"b\" NIL) X \"()\")\n");
	expect_crlf("* X {2}@@@", "* X \"\\x0d\\x0a\"\n");
	/* A literal must end its line and be well formed. */
	expect_crlf("* X {2} @ab@",
		    "ERR literal announcement not at the end of the line at offset 4 in "
		    "response line \"* X {2} \"\n");
	expect_crlf("* X {2x}@", "ERR malformed literal announcement at offset 4 in response "
				 "line \"* X {2x}\"\n");
	expect_crlf("* X {}@", "ERR malformed literal announcement at offset 4 in response "
			       "line \"* X {}\"\n");
	expect_crlf("* X {99999999999999999999}@",
		    "ERR literal size too large at offset 4 in response line "
		    "\"* X {99999999999999999999}\"\n");
	expect_crlf("* X {3}@abcdef@", "ERR expected a space before 'd' at offset 12 in "
				       "response line \"* X {3}def\"\n");
	/* The response line for logs elides literal contents. */
	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	struct imap_response *resp = parse1("* 1 FETCH (BODY[] {5}\r\nhello FLAGS ())\r\n", r);
	CHECK_STR(imap_response_line(resp), "* 1 FETCH (BODY[] {5} FLAGS ())");
	imap_response_free(&resp);
	imap_reader_free(&r);
}

static void test_huge_literal(void)
{
	const char *in = "* 1 FETCH (BODY[] {1000000000000}\r\nabcdef";
	expect(in, "ERR literal of 1000000000000 bytes exceeds the limit of 1048576 at offset 18 "
		   "in response line \"* 1 FETCH (BODY[] {1000000000000}\"\n");
	/* A sink takes it: the reader streams and asks for more. */
	struct tsink t = { 0 };
	struct imap_sink s = sink_of(&t);
	struct imap_reader *r = imap_reader_new(&imap_limits_before_login);
	imap_reader_set_sink(r, &s);
	size_t used;
	CHECK_INT(imap_reader_feed(r, in, strlen(in), &used), PARSE_MORE);
	CHECK_INT(used, strlen(in));
	CHECK_INT(t.opened, 1);
	CHECK_STR(t.items[0], "BODY[]");
	CHECK(t.sizes[0] == 1000000000000ull);
	CHECK_STR(buf_str(&t.data[0]), "abcdef");
	CHECK_INT(t.aborted, 0);
	imap_reader_reset(r);
	CHECK_INT(t.aborted, 1);
	/* The reader works again after the reset. */
	struct imap_response *resp = parse1("* OK x\r\n", r);
	CHECK_STR(resp->text, "x");
	imap_response_free(&resp);
	imap_reader_free(&r);
	CHECK_INT(t.aborted, 1);
	ts_free(&t);
}

static void test_sink(void)
{
	const char *in = "* 7 FETCH (UID 9 BODY[] {11}\r\nhello world BODY[HEADER] {3}\r\nabc)\r\n"
			 "A1 OK done\r\n";
	/* Only BODY[] goes to the sink; BODY[HEADER] stays in memory. */
	expect_lim(in, strlen(in),
		   "* 7 FETCH (UID 9 BODY[] <sink 11> BODY[HEADER] \"abc\")\nA1 OK done\n"
		   "BODY[]=hello world\n",
		   &imap_limits_after_login, "BODY[]");
	expect_lim(in, strlen(in),
		   "* 7 FETCH (UID 9 BODY[] <sink 11> BODY[HEADER] <sink 3>)\nA1 OK done\n"
		   "BODY[]=hello world\nBODY[HEADER]=abc\n",
		   &imap_limits_after_login, "*");

	/* Byte by byte: one write per byte. */
	struct tsink t = { 0 };
	struct imap_sink s = sink_of(&t);
	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	imap_reader_set_sink(r, &s);
	struct imap_response *resp = NULL;
	size_t used;
	for (size_t i = 0; i < strlen(in) && !resp; i++) {
		enum parse_res res = imap_reader_feed(r, in + i, 1, &used);
		CHECK_INT(used, 1);
		if (res == PARSE_DONE)
			resp = imap_reader_take(r);
	}
	CHECK(resp != NULL);
	CHECK_INT(t.writes, 14);
	/* Taking one handle: only the other is aborted at free. */
	const struct imap_value *body = imap_response_fetch(resp, "BODY[]");
	void *h;
	uint64_t size;
	CHECK(imap_value_sink(body, &h, &size) && h == &t.data[0] && size == 11);
	CHECK(imap_response_take_sink(resp, body) == &t.data[0]);
	CHECK(imap_response_take_sink(resp, body) == NULL);
	CHECK(imap_response_take_sink(resp, imap_response_fetch(resp, "UID")) == NULL);
	imap_response_free(&resp);
	CHECK_INT(t.aborted, 1);
	CHECK(t.abort_seen[1] && !t.abort_seen[0]);

	/* A response completed but never taken is freed at the next feed. */
	CHECK_INT(imap_reader_feed(r, in, strlen(in), &used), PARSE_DONE);
	CHECK_INT(t.opened, 4);
	CHECK_INT(imap_reader_feed(r, in + used, strlen(in) - used, &used), PARSE_DONE);
	CHECK_INT(t.aborted, 3);
	resp = imap_reader_take(r);
	CHECK_STR(resp->tag, "A1");
	imap_response_free(&resp);
	imap_reader_free(&r);
	ts_free(&t);
}

static void test_sink_errors(void)
{
	/* A parse error after a streamed literal aborts its handle. */
	const char *in = "* 7 FETCH (BODY[] {5}\r\nhello))\r\n";
	expect_lim(in, strlen(in),
		   "ERR unexpected ')' at offset 29 in response line \"* 7 FETCH (BODY[] {5}))\"\n"
		   "BODY[]=hello\n",
		   &imap_limits_after_login, "BODY[]");
	/* A failing write stops the parse and is named. */
	struct tsink t = { .fail_after = 4 };
	struct imap_sink s = sink_of(&t);
	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	imap_reader_set_sink(r, &s);
	size_t used;
	CHECK_INT(imap_reader_feed(r, in, strlen(in), &used), PARSE_ERR);
	CHECK_STR(imap_reader_err(r)->msg, "could not store the literal of 5 bytes (BODY[]): "
					   "No space left on device");
	CHECK(imap_reader_err(r)->cls == ERR_LOCAL);
	CHECK_INT(t.aborted, 1);
	/* Refuses everything until reset. */
	CHECK_INT(imap_reader_feed(r, "* OK\r\n", 6, &used), PARSE_ERR);
	CHECK_INT(used, 0);
	imap_reader_reset(r);
	CHECK_STR(imap_reader_err(r)->msg, "");
	CHECK_INT(imap_reader_feed(r, "* OK\r\n", 6, &used), PARSE_DONE);
	/* Without the sink the literal stays in memory. */
	imap_reader_set_sink(r, NULL);
	CHECK_INT(imap_reader_feed(r, in, 23, &used), PARSE_MORE);
	CHECK_INT(imap_reader_feed(r, in + 23, 7, &used), PARSE_MORE);
	CHECK_INT(t.opened, 1);
	imap_reader_free(&r);
	CHECK_INT(t.aborted, 1);
	ts_free(&t);

	/* Freeing the reader mid-literal aborts too. */
	struct tsink t2 = { 0 };
	s = sink_of(&t2);
	r = imap_reader_new(&imap_limits_after_login);
	imap_reader_set_sink(r, &s);
	CHECK_INT(imap_reader_feed(r, in, 25, &used), PARSE_MORE);
	imap_reader_free(&r);
	CHECK_INT(t2.opened, 1);
	CHECK_INT(t2.aborted, 1);
	ts_free(&t2);
}

static void test_malformed(void)
{
	expect_crlf("@", "ERR empty response line at offset 0 in response line \"\"\n");
	expect_crlf("* 1 FETCH (UID 5))@",
		    "ERR unexpected ')' at offset 17 in response line \"* 1 FETCH (UID 5))\"\n");
	expect_crlf("* 1 FETCH (UID 5@", "ERR 1 list(s) not closed at the end of the response "
					 "at offset 16 in response line \"* 1 FETCH (UID 5\"\n");
	expect_crlf("* LIST () \"/ INBOX@",
		    "ERR unterminated quoted string at offset 10 in response line "
		    "\"* LIST () \"/ INBOX\"\n");
	expect_crlf("* LIST () \"\\n\" INBOX@",
		    "ERR bad escape of 'n' in quoted string at offset 11 in response line "
		    "\"* LIST () \"\\n\" INBOX\"\n");
	expect_crlf("* FLAGS(\\Seen)@",
		    "ERR expected a space before '(' at offset 7 in response line "
		    "\"* FLAGS(\\Seen)\"\n");
	expect_crlf("* LIST () \"/\"INBOX@", "ERR expected a space before 'I' at offset 13 in "
					     "response line \"* LIST () \"/\"INBOX\"\n");
	expect_crlf("*OK@", "ERR unexpected 'O' at offset 1 in response line \"*OK\"\n");
	expect_crlf("* @", "ERR unexpected end of line at offset 2 in response line \"* \"\n");
	expect_crlf("A1 FOO bar@", "ERR tagged response with FOO instead of OK, NO or BAD at "
				   "offset 3 in response line \"A1 FOO bar\"\n");
	expect_crlf("A1@", "ERR unexpected end of line at offset 2 in response line \"A1\"\n");
	expect_crlf("(A1 OK@",
		    "ERR unexpected '(' at the start of a response at offset 0 in response "
		    "line \"(A1 OK\"\n");
	expect_crlf("a*1 OK@", "ERR unexpected '*' at offset 1 in response line \"a*1 OK\"\n");
	expect_crlf("+x@", "ERR unexpected 'x' at offset 1 in response line \"+x\"\n");
	/* Not a status with a code: a response named "OK[ALERT]". */
	expect_crlf("* OKAY@* OK[ALERT]@", "* OKAY\n* OK[ALERT]\n");
	expect_crlf("* OK [ALERT text@", "ERR unterminated response code at offset 5 in "
					 "response line \"* OK [ALERT text\"\n");
	expect_crlf("* OK []@", "ERR unexpected ']' at offset 6 in response line \"* OK []\"\n");
	expect_crlf("* 99999999999999999999 EXISTS@",
		    "ERR number too large at offset 2 in response line "
		    "\"* 99999999999999999999 EXISTS\"\n");
	expect_crlf("* 5@", "ERR unexpected end of line at offset 3 in response line \"* 5\"\n");
	expect_crlf("* X a\\b@", "ERR expected a space before '\\' at offset 5 in response "
				 "line \"* X a\\b\"\n");
	/* A CR alone is no line end. */
	expect_crlf("* OK a\rb@", "ERR unexpected byte 0x0d at offset 6 in response line "
				  "\"* OK a\\x0db\"\n");
	/* Valid responses before the error come out first. */
	expect_crlf("* OK fine@* X )@* OK never@",
		    "* OK fine\nERR unexpected ')' at offset 4 in response line \"* X )\"\n");
}

static void test_bytes(void)
{
	/* Bare LF is accepted as a line end. */
	expect("* OK hi\n* 3 EXISTS\nA1 OK done\n", "* OK hi\n* 3 EXISTS\nA1 OK done\n");
	/* NUL bytes outside literals are refused, inside literals kept. */
	const char nul[] = "* OK a\0b\r\n";
	expect_lim(nul, sizeof(nul) - 1,
		   "ERR unexpected byte 0x00 at offset 6 in response line \"* OK a\\x00b\"\n",
		   &imap_limits_after_login, NULL);
	const char nul2[] = "* LIST () \"a\0\" X\r\n";
	expect_lim(nul2, sizeof(nul2) - 1,
		   "ERR unexpected byte 0x00 at offset 12 in response line "
		   "\"* LIST () \"a\\x00\" X\"\n",
		   &imap_limits_after_login, NULL);
	/* 8-bit bytes: accepted in atoms, quoted strings and text. */
	expect_crlf("* LIST () \"/\" Entw\xc3\xbcrfe@* LIST () \"/\" \"\xe6\x97\xa5\"@"
		    "* OK gr\xc3\xbc\xc3\x9f@",
		    "* LIST () \"/\" Entw\xc3\xbcrfe\n* LIST () \"/\" \"\\xe6\\x97\\xa5\"\n"
		    "* OK gr\xc3\xbc\xc3\x9f\n");
	/* Control characters are not atom characters. */
	expect_crlf("* X a\x01@", "ERR expected a space before byte 0x01 at offset 5 in "
				  "response line \"* X a\\x01\"\n");
	expect_crlf("* X \x7f@",
		    "ERR unexpected byte 0x7f at offset 4 in response line \"* X \\x7f\"\n");
}

static void test_limits(void)
{
	struct imap_limits lim = imap_limits_before_login;
	/* Nesting bomb. */
	struct buf in = { 0 };
	buf_puts(&in, "* X ");
	for (int i = 0; i < 5000; i++)
		buf_putc(&in, '(');
	buf_puts(&in, "\r\n");
	expect_lim(in.data, in.len,
		   "ERR lists nested deeper than 64 at offset 68 in response line \"* X "
		   "((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
		   "(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
		   "(((((((((((((((((((((((((((((((((((((((((((((((((((((...\"\n",
		   &imap_limits_after_login, NULL);
	/* Line over the limit, with and without a line end in sight. */
	buf_reset(&in);
	buf_puts(&in, "* SEARCH");
	while (in.len < 9000)
		buf_puts(&in, " 12345");
	char *want = xasprintf("ERR response line longer than 8192 bytes at offset 8192 in "
			       "response line \"%.200s...\"\n",
			       in.data);
	expect_lim(in.data, in.len, want, &lim, NULL);
	buf_puts(&in, "\r\n");
	expect_lim(in.data, in.len, want, &lim, NULL);
	free(want);
	/* Exactly at the limit is fine: the limit counts the CRLF. */
	lim.max_line = 10;
	expect_lim("* OK 678\r\n* OK 6789\r\n", 21,
		   "* OK 678\nERR response line longer than 10 bytes at offset 10 in response "
		   "line \"* OK 6789\\x0d\\x0a\"\n",
		   &lim, NULL);
	/* Values, inline literal size, memory. */
	lim = imap_limits_before_login;
	lim.max_values = 3;
	expect_crlf("* SEARCH 1 2 3@", "* SEARCH 1 2 3\n");
	expect_lim("* SEARCH 1 2 3 4\r\n", 18,
		   "ERR more than 3 values in one response at offset 15 in response line "
		   "\"* SEARCH 1 2 3 4\"\n",
		   &lim, NULL);
	lim = imap_limits_before_login;
	lim.max_inline_literal = 4;
	expect_lim("* X {4}\r\nabcd\r\n* X {5}\r\nabcde\r\n", 31,
		   "* X \"abcd\"\nERR literal of 5 bytes exceeds the limit of 4 at offset 4 in "
		   "response line \"* X {5}\"\n",
		   &lim, NULL);
	lim = imap_limits_before_login;
	lim.max_bytes = 200;
	expect_lim("* X \"0123456789012345678901234567890123456789\" "
		   "\"0123456789012345678901234567890123456789\" "
		   "\"0123456789012345678901234567890123456789\" "
		   "\"0123456789012345678901234567890123456789\"\r\n",
		   180,
		   "ERR response needs more than 200 bytes of memory at offset 90 in response "
		   "line \"* X \"0123456789012345678901234567890123456789\" "
		   "\"0123456789012345678901234567890123456789\" "
		   "\"0123456789012345678901234567890123456789\" "
		   "\"0123456789012345678901234567890123456789\"\"\n",
		   &lim, NULL);
	buf_free(&in);
}

static void test_big_search(void)
{
	/* 100,000 UIDs on one line fit the limits after login. */
	struct buf in = { 0 };
	buf_puts(&in, "* SEARCH");
	for (unsigned i = 1; i <= 100000; i++)
		buf_printf(&in, " %u", 1000000 + i);
	buf_puts(&in, "\r\n");
	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	size_t used;
	CHECK_INT(imap_reader_feed(r, in.data, in.len, &used), PARSE_DONE);
	struct imap_response *resp = imap_reader_take(r);
	CHECK_INT(resp->nargs, 100000);
	uint64_t u;
	CHECK(imap_value_number(&resp->args[99999], &u) && u == 1100000);
	CHECK_INT(strlen(imap_response_line(resp)), 203);
	imap_response_free(&resp);
	/* Before login it is refused. */
	imap_reader_set_limits(r, &imap_limits_before_login);
	CHECK_INT(imap_reader_feed(r, in.data, in.len, &used), PARSE_ERR);
	CHECK(strstr(imap_reader_err(r)->msg, "longer than 8192") != NULL);
	imap_reader_free(&r);
	buf_free(&in);
}

static void test_bodystructure(void)
{
	expect_crlf(
	    "* 3 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL "
	    "\"7BIT\" 12 1 NIL NIL NIL NIL)(\"TEXT\" \"HTML\" NIL NIL NIL \"QUOTED-PRINTABLE\" "
	    "40 2 NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" \"b1\") NIL NIL NIL))@",
	    "* 3 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL "
	    "\"7BIT\" 12 1 NIL NIL NIL NIL) (\"TEXT\" \"HTML\" NIL NIL NIL "
	    "\"QUOTED-PRINTABLE\" 40 2 NIL NIL NIL NIL) \"ALTERNATIVE\" (\"BOUNDARY\" "
	    "\"b1\") NIL NIL NIL))\n");
}

static void test_accessors(void)
{
	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	struct imap_response *resp = parse1("* X atom 12 \"str\" NIL () 007 NiL "
					    "123456789012345678901234567890\r\n",
					    r);
	const struct imap_value *a = resp->args;
	const struct imap_value *items;
	uint64_t u;
	size_t len, n;
	const char *s;
	CHECK_INT(resp->nargs, 8);
	CHECK(a[0].type == IMAP_ATOM && a[1].type == IMAP_NUMBER && a[2].type == IMAP_STRING);
	CHECK(a[3].type == IMAP_NIL && a[4].type == IMAP_LIST && a[5].type == IMAP_NUMBER);
	CHECK(a[6].type == IMAP_NIL && a[7].type == IMAP_ATOM);
	CHECK(!imap_value_number(&a[0], &u) && !imap_value_number(&a[2], &u));
	CHECK(imap_value_number(&a[5], &u) && u == 7);
	CHECK_STR(imap_value_astring(&a[5], NULL), "007");
	CHECK(imap_value_atom(&a[1]) == NULL && imap_value_atom(&a[2]) == NULL);
	CHECK(!imap_value_atom_eq(&a[2], "str"));
	CHECK(imap_value_string(&a[0], NULL) == NULL);
	CHECK_STR(imap_value_string(&a[2], &len), "str");
	CHECK_STR(imap_value_astring(&a[0], &len), "atom");
	CHECK_INT(len, 4);
	CHECK_STR(imap_value_astring(&a[3], NULL), "NIL");
	CHECK(imap_value_astring(&a[4], NULL) == NULL);
	CHECK(imap_value_list(&a[4], &items, &n) && n == 0 && items == NULL);
	CHECK(!imap_value_list(&a[0], &items, &n));
	CHECK(!imap_value_nstring(&a[0], &s, NULL));
	CHECK(imap_value_nstring(&a[6], &s, NULL) && s == NULL);
	len = 99;
	CHECK(imap_value_nstring(&a[3], &s, &len) && s == NULL && len == 0);
	CHECK(!imap_value_sink(&a[2], NULL, NULL));
	CHECK(!imap_value_is_nil(&a[0]) && !imap_value_is_nil(NULL));
	CHECK(imap_value_atom(NULL) == NULL && !imap_value_number(NULL, &u));
	CHECK(imap_list_find(&a[0], "x") == NULL);
	CHECK(imap_response_fetch(resp, "x") == NULL);
	CHECK(!imap_response_code_is(resp, "x"));
	imap_response_free(&resp);
	imap_response_free(&resp);
	imap_reader_free(&r);
	imap_reader_free(&r);
}

static void test_long_name(void)
{
	struct buf in = { 0 }, want = { 0 };
	buf_puts(&in, "* ");
	for (int i = 0; i < 1500; i++)
		buf_putc(&in, 'X');
	buf_printf(&want, "%s 1\n", in.data);
	buf_puts(&in, " 1\r\n");
	expect_lim(in.data, in.len, want.data, &imap_limits_after_login, NULL);
	buf_free(&in);
	buf_free(&want);
}

static void test_line_excerpt(void)
{
	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	struct buf in = { 0 };
	buf_puts(&in, "* OK ");
	for (int i = 0; i < 300; i++)
		buf_putc(&in, 'a' + i % 26);
	buf_puts(&in, "\r\n");
	struct imap_response *resp = parse1(in.data, r);
	const char *line = imap_response_line(resp);
	CHECK_INT(strlen(line), 203);
	CHECK(strncmp(line, "* OK abcdef", 11) == 0);
	CHECK_STR(line + 200, "...");
	CHECK_INT(strlen(resp->text), 300);
	imap_response_free(&resp);
	imap_reader_free(&r);
	buf_free(&in);
}

static void test_several_per_feed(void)
{
	const char *in = "* 1 EXISTS\r\n* 2 EXISTS\r\nA1 OK done\r\n* 3 EXI";
	struct imap_reader *r = imap_reader_new(&imap_limits_after_login);
	size_t pos = 0, used;
	int done = 0;
	for (;;) {
		enum parse_res res = imap_reader_feed(r, in + pos, strlen(in) - pos, &used);
		pos += used;
		if (res != PARSE_DONE) {
			CHECK_INT(res, PARSE_MORE);
			break;
		}
		struct imap_response *resp = imap_reader_take(r);
		imap_response_free(&resp);
		done++;
	}
	CHECK_INT(done, 3);
	CHECK_INT(pos, strlen(in));
	CHECK_INT(imap_reader_feed(r, "STS\r\n", 5, &used), PARSE_DONE);
	struct imap_response *resp = imap_reader_take(r);
	CHECK_STR(resp->name, "EXISTS");
	CHECK(resp->number == 3);
	imap_response_free(&resp);
	CHECK_INT(imap_reader_feed(r, "", 0, &used), PARSE_MORE);
	imap_reader_free(&r);
}

static void test_quote(void)
{
	struct buf b = { 0 };
	struct err e = { 0 };
	CHECK_INT(imap_quote_astring(&b, "INBOX", 5, 0), IMAP_QUOTE_ATOM);
	CHECK_INT(imap_quote_astring(&b, " ", 1, 0), IMAP_QUOTE_QUOTED);
	CHECK_INT(imap_quote_astring(&b, "a\"b\\c", 5, 0), IMAP_QUOTE_QUOTED);
	CHECK_INT(imap_quote_astring(&b, "", 0, 0), IMAP_QUOTE_QUOTED);
	CHECK_INT(imap_quote_astring(&b, "nil", 3, 0), IMAP_QUOTE_QUOTED);
	CHECK_INT(imap_quote_astring(&b, "a*", 2, 0), IMAP_QUOTE_QUOTED);
	CHECK_INT(imap_quote_astring(&b, "[Gmail]", 7, 0), IMAP_QUOTE_QUOTED);
	CHECK_STR(buf_str(&b), "INBOX\" \"\"a\\\"b\\\\c\"\"\"\"nil\"\"a*\"\"[Gmail]\"");
	buf_reset(&b);
	CHECK_INT(imap_quote_astring(&b, "a\r\nb", 4, 0), IMAP_QUOTE_LITERAL);
	CHECK_INT(imap_quote_astring(&b, "a\0b", 3, IMAP_QUOTE_UTF8), IMAP_QUOTE_LITERAL);
	CHECK_INT(imap_quote_astring(&b, "\xc3\xa4", 2, 0), IMAP_QUOTE_LITERAL);
	CHECK_STR(buf_str(&b), "");
	CHECK_INT(imap_quote_astring(&b, "\xc3\xa4", 2, IMAP_QUOTE_UTF8), IMAP_QUOTE_QUOTED);
	CHECK_STR(buf_str(&b), "\"\xc3\xa4\"");
	buf_reset(&b);
	CHECK_INT(imap_quote_mailbox(&b, "Entw\xc3\xbcrfe", 9, 0, &e), 0);
	buf_putc(&b, ' ');
	CHECK_INT(imap_quote_mailbox(&b, "A & B", 5, 0, &e), 0);
	buf_putc(&b, ' ');
	CHECK_INT(imap_quote_mailbox(&b, "Entw\xc3\xbcrfe", 9, IMAP_QUOTE_UTF8, &e), 0);
	CHECK_STR(buf_str(&b), "Entw&APw-rfe \"A &- B\" \"Entw\xc3\xbcrfe\"");
	buf_reset(&b);
	CHECK_INT(imap_quote_mailbox(&b, "a\xc3", 2, 0, &e), -EILSEQ);
	CHECK_INT(imap_quote_mailbox(&b, "a\xc3", 2, IMAP_QUOTE_UTF8, &e), -EILSEQ);
	CHECK_INT(imap_quote_mailbox(&b, "a\nb", 3, IMAP_QUOTE_UTF8, &e), -EINVAL);
	CHECK_STR(e.msg, "mailbox name contains CR or LF");
	CHECK_INT(imap_quote_mailbox(&b, "a\nb", 3, 0, &e), 0);
	CHECK_STR(buf_str(&b), "a&AAo-b");
	buf_free(&b);
}

int main(void)
{
	RUN(test_rfc3501_session);
	RUN(test_rfc9051_data);
	RUN(test_select_codes);
	RUN(test_status_responses);
	RUN(test_continuation);
	RUN(test_fetch);
	RUN(test_sections);
	RUN(test_literals);
	RUN(test_huge_literal);
	RUN(test_sink);
	RUN(test_sink_errors);
	RUN(test_malformed);
	RUN(test_bytes);
	RUN(test_limits);
	RUN(test_big_search);
	RUN(test_bodystructure);
	RUN(test_accessors);
	RUN(test_long_name);
	RUN(test_line_excerpt);
	RUN(test_several_per_feed);
	RUN(test_quote);
	CHECK_DONE();
}
