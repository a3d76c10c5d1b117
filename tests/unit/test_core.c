#include "check.h"
#include "core/base64.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"

static void test_buf(void)
{
	struct buf b = { 0 };
	CHECK_STR(buf_str(&b), "");
	buf_puts(&b, "hello");
	buf_putc(&b, ' ');
	buf_printf(&b, "%d-%s", 42, "x");
	CHECK_STR(buf_str(&b), "hello 42-x");
	buf_consume(&b, 6);
	CHECK_STR(buf_str(&b), "42-x");
	CHECK_INT(b.len, 4);
	for (int i = 0; i < 10000; i++)
		buf_putc(&b, 'a');
	CHECK_INT(b.len, 10004);
	char *s = buf_steal(&b);
	CHECK_INT(strlen(s), 10004);
	CHECK(b.data == NULL && b.len == 0);
	free(s);
	buf_free(&b);
}

static void test_base64(void)
{
	/* RFC 4648 section 10 */
	const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	const char *out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	for (size_t i = 0; i < ARRAY_SIZE(in); i++) {
		char *s = base64_encode(in[i], strlen(in[i]));
		CHECK_STR(s, out[i]);
		free(s);
	}
	char *s = base64_encode("\0u\0p", 4); /* SASL PLAIN starts with NUL */
	CHECK_STR(s, "AHUAcA==");
	free(s);
}

static void test_json_string(void)
{
	struct buf b = { 0 };
	buf_json_string(&b, "a\"b\\c\nd\x01 Entwürfe");
	CHECK_STR(buf_str(&b), "\"a\\\"b\\\\c\\nd\\u0001 Entwürfe\"");
	buf_reset(&b);
	buf_json_string(&b, "bad \xff\xfe byte");
	CHECK_STR(buf_str(&b), "\"bad ?? byte\"");
	buf_reset(&b);
	buf_json_string(&b, "\xed\xa0\x80"); /* a surrogate */
	CHECK_STR(buf_str(&b), "\"???\"");
	buf_free(&b);
}

static void test_err(void)
{
	struct err e = { 0 };
	CHECK_INT(err_set(&e, -5, ERR_AUTH, "refused %s", "x"), -5);
	CHECK_STR(e.msg, "refused x");
	err_prefix(&e, "account=%s", "work");
	CHECK_STR(e.msg, "account=work: refused x");
	CHECK(e.cls == ERR_AUTH);
	CHECK_STR(err_class_name(e.cls), "authentication");
	CHECK_INT(err_set(NULL, -1, ERR_TEMP, "ignored"), -1);
}

static void test_log_levels(void)
{
	CHECK_INT(log_level_parse("trace"), LOG_TRACE);
	CHECK_INT(log_level_parse("error"), LOG_ERROR);
	CHECK_INT(log_level_parse("loud"), -1);
	log_init(LOG_WARN);
	CHECK(log_enabled(LOG_ERROR));
	CHECK(!log_enabled(LOG_INFO));
}

static void test_xasprintf(void)
{
	char *s = xasprintf("%s:%d", "host", 993);
	CHECK_STR(s, "host:993");
	xfree(&s);
	CHECK(s == NULL);
}

int main(void)
{
	RUN(test_buf);
	RUN(test_base64);
	RUN(test_json_string);
	RUN(test_err);
	RUN(test_log_levels);
	RUN(test_xasprintf);
	CHECK_DONE();
}
