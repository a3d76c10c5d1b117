/* The SASL initial responses the IMAP, POP3 and SMTP logins send, byte for
 * byte (RFC 4616 PLAIN, Google's XOAUTH2, RFC 7628 OAUTHBEARER). */
#include "check.h"
#include "net/sasl.h"

static const struct server_conf sc = { .host = "mail.example", .port = 993, .user = "alice" };

static void check_response(const char *mech, const char *secret, const char *want)
{
	char *got = sasl_initial_response(mech, &sc, secret);
	CHECK_STR(got, want);
	free(got);
}

static void test_plain(void)
{
	/* "\0alice\0s3cret": the authorization identity is left empty */
	check_response("PLAIN", "s3cret", "AGFsaWNlAHMzY3JldA==");
}

static void test_xoauth2(void)
{
	/* "user=alice\1auth=Bearer tok\1\1" */
	check_response("XOAUTH2", "tok", "dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2sBAQ==");
}

static void test_oauthbearer(void)
{
	/* "n,a=alice,\1host=mail.example\1port=993\1auth=Bearer tok\1\1" */
	check_response(
		"OAUTHBEARER", "tok",
		"bixhPWFsaWNlLAFob3N0PW1haWwuZXhhbXBsZQFwb3J0PTk5MwFhdXRoPUJlYXJlciB0b2sBAQ==");
}

int main(void)
{
	RUN(test_plain);
	RUN(test_xoauth2);
	RUN(test_oauthbearer);
	CHECK_DONE();
}
