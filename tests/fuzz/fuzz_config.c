/* Arbitrary bytes into the config loader: it must answer with a config or
 * with one line of error, never crash, leak or hang (no @include may make it
 * open a file). */
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libconfig 1.5 (Debian 12) leaks a string token when a syntax error is
 * found right at it: its grammar has no destructor for TOK_STRING, so bison
 * drops the buffer its scanner allocated for the token. Nothing on our side
 * can free it (it is a few bytes per failed load); later libconfig releases
 * free it. Only allocations made by libconfig's scanner are excused. */
const char *__lsan_default_suppressions(void)
{
	/* libconfig is built without frame pointers, so a leak's stack often
	 * ends at the allocating function: name both that allocate tokens. */
	return "leak:libconfig_yylex\nleak:strbuf_append\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct config *c = NULL;
	struct err e = { 0 };
	if (config_load_string(text, "fuzz.conf", &c, &e) == 0) {
		for (size_t i = 0; i < c->n_accounts; i++)
			if (config_find_account(c, c->accounts[i].name) != &c->accounts[i])
				abort();
		config_free(&c);
	} else if (c || e.cls != ERR_CONFIG || !e.msg[0] || strchr(e.msg, '\n')) {
		abort();
	}
	free(text);
	return 0;
}
