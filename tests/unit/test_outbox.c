/* The outbox's pure parts: address lists, the envelope and the two views of
 * a message, status files. */
#include "check.h"
#include "core/buf.h"
#include "core/xalloc.h"
#include "outbox/addr.h"
#include "outbox/message.h"
#include "outbox/status.h"

#include <errno.h>
#include <unistd.h>

static char dir[] = "/tmp/mf-test-outbox-XXXXXX";

static void test_address_lists(void)
{
	struct addr_list l = { 0 };
	addr_parse_list(&l, "Ann <ann@example.org>, \"Doe, Bob\" <bob@example.org>,\r\n"
			    " carl@example.org (Carl), friends: dee@example.org, eve@x.org;,"
			    " Ann Again <ANN@example.org>, not an address, <>");
	CHECK_INT(l.n, 5);
	CHECK_STR(l.v[0], "ann@example.org");
	CHECK_STR(l.v[1], "bob@example.org");
	CHECK_STR(l.v[2], "carl@example.org");
	CHECK_STR(l.v[3], "dee@example.org");
	CHECK_STR(l.v[4], "eve@x.org");
	addr_parse_list(&l, "undisclosed-recipients:;");
	CHECK_INT(l.n, 5);
	addr_list_free(&l);
	addr_parse_list(&l, "\"x\" <müller@beispiel.de>");
	CHECK_STR(l.v[0], "müller@beispiel.de");
	CHECK(addr_is_utf8(l.v[0]));
	CHECK(!addr_is_utf8("a@b"));
	addr_list_free(&l);
	CHECK(addr_valid("a@b.c"));
	CHECK(!addr_valid("a b@c"));
	CHECK(!addr_valid("@c"));
	CHECK(!addr_valid("a@"));
}

static char *write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static char *view(struct outbox_msg *m, enum outbox_view v, size_t step)
{
	char buf[4096];
	struct buf out = { 0 };
	struct err e;
	ssize_t n;
	outbox_msg_rewind(m);
	while ((n = outbox_msg_read(m, v, buf, step, &e)) > 0)
		buf_append(&out, buf, (size_t)n);
	CHECK_INT(out.len, outbox_msg_size(m, v));
	return buf_steal(&out);
}

static void test_envelope_and_views(void)
{
	char *path = write_file("m1", "X-Mailferry-Envelope-From: <me@example.org>\n"
				      "X-Mailferry-Envelope-To: <x@example.org>\n"
				      "From: Me <me@example.org>\n"
				      "To: you@example.org\n"
				      "Bcc: secret@example.org,\n"
				      " other@example.org\n"
				      "Subject: hi\n"
				      "\n"
				      "body\n");
	struct outbox_msg *m;
	struct err e;
	CHECK_INT(outbox_msg_open(path, &m, &e), 0);
	CHECK_STR(outbox_msg_from(m), "me@example.org");
	CHECK_INT(outbox_msg_rcpts(m)->n, 1); /* the envelope decides */
	CHECK_STR(outbox_msg_rcpts(m)->v[0], "x@example.org");
	for (size_t step = 1; step < 80; step += 13) {
		char *smtp = view(m, OUTBOX_FOR_SMTP, step), *sent = view(m, OUTBOX_FOR_SENT, step);
		CHECK_STR(smtp, "From: Me <me@example.org>\nTo: you@example.org\nSubject: hi\n\nbody\n");
		CHECK_STR(sent, "From: Me <me@example.org>\nTo: you@example.org\n"
				"Bcc: secret@example.org,\n other@example.org\nSubject: hi\n\nbody\n");
		free(smtp);
		free(sent);
	}
	outbox_msg_free(&m);
	free(path);
}

static void test_recipients_from_headers(void)
{
	char *path = write_file("m2", "From: a@example.org\r\nTo: b@example.org, c@example.org\r\n"
				      "Cc: d@example.org\r\nBcc: e@example.org\r\n\r\nü\r\n");
	struct outbox_msg *m;
	struct err e;
	CHECK_INT(outbox_msg_open(path, &m, &e), 0);
	CHECK_INT(outbox_msg_rcpts(m)->n, 4);
	CHECK(outbox_msg_eight_bit(m));
	outbox_msg_free(&m);
	free(path);
	/* -t with arguments: both */
	path = write_file("m3", "X-Mailferry-Envelope-To: <z@example.org>\n"
				"X-Mailferry-Envelope-Headers: yes\n"
				"From: a@example.org\nTo: b@example.org\n\nx\n");
	CHECK_INT(outbox_msg_open(path, &m, &e), 0);
	CHECK_INT(outbox_msg_rcpts(m)->n, 2);
	outbox_msg_free(&m);
	free(path);
}

static void test_malformed(void)
{
	struct outbox_msg *m = NULL;
	struct err e;
	const char *bad[][2] = {
		{ "To: b@example.org\n\nno from\n", "no From" },
		{ "From: a@example.org\n\nnobody to send to\n", "no recipient" },
		{ "From: a@example.org\nTo: b@example.org\nthis is not a field\n\nx\n",
		  "line 3 of the header is not a header field" },
		{ " starts folded\nFrom: a@x.org\nTo: b@x.org\n\n", "continues nothing" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char name[16];
		snprintf(name, sizeof(name), "bad%zu", i);
		char *path = write_file(name, bad[i][0]);
		CHECK_INT(outbox_msg_open(path, &m, &e), -EINVAL);
		CHECK(strstr(e.msg, bad[i][1]) != NULL);
		CHECK(m == NULL);
		free(path);
	}
}

static void test_status_files(void)
{
	struct outbox_status st, back;
	struct err e;
	CHECK_INT(outbox_status_read(dir, "fresh", &st, &e), 0);
	CHECK_INT(st.state, OUTBOX_QUEUED);
	st = (struct outbox_status){ .state = OUTBOX_FAILED, .attempts = 3, .next_try = 1234 };
	snprintf(st.reply, sizeof(st.reply), "550 5.1.1 no such user\nsecond line");
	snprintf(st.sent_base, sizeof(st.sent_base), "123.M4P5Q6.host");
	CHECK_INT(outbox_status_write(dir, "msg", &st, &e), 0);
	CHECK_INT(outbox_status_read(dir, "msg", &back, &e), 0);
	CHECK_INT(back.state, OUTBOX_FAILED);
	CHECK_INT(back.attempts, 3);
	CHECK_INT(back.next_try, 1234);
	CHECK_STR(back.reply, "550 5.1.1 no such user second line");
	CHECK_STR(back.sent_base, "123.M4P5Q6.host");
	CHECK_INT(outbox_status_remove(dir, "msg", &e), 0);
	CHECK_INT(outbox_status_read(dir, "msg", &back, &e), 0);
	CHECK_INT(back.state, OUTBOX_QUEUED);
}

int main(void)
{
	if (!mkdtemp(dir))
		BUG("mkdtemp");
	RUN(test_address_lists);
	RUN(test_envelope_and_views);
	RUN(test_recipients_from_headers);
	RUN(test_malformed);
	RUN(test_status_files);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	CHECK_DONE();
}
