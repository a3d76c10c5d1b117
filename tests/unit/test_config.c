/* The config loader: the example file, defaults, every error message with its
 * line, the permission rule, path expansion, and password fetching on a real
 * libuv loop with real /bin/sh commands. */
#include "check.h"
#include "config/config.h"
#include "config/secret.h"
#include "core/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

static char tmpdir[64];

static const char *data_path(const char *rel)
{
	static char p[1024];
	const char *d = getenv("MF_TEST_DATA");
	snprintf(p, sizeof(p), "%s/%s", d ? d : "tests/unit/data", rel);
	return p;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *t = xmalloc(1 << 16);
	size_t n = fread(t, 1, (1 << 16) - 1, f);
	t[n] = '\0';
	fclose(f);
	return t;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	CHECK(fchmod(fd, mode) == 0);
	close(fd);
}

/* One account whose lines are fixed: account-level extra on line 5, imap
 * extra on line 10. */
static const char *conf_host(const char *host, const char *acct_extra, const char *imap_extra)
{
	static char t[4096];
	snprintf(t, sizeof(t),
		 "accounts = (\n"
		 "  {\n"
		 "    name = \"work\";\n"
		 "    maildir = \"/m/work\";\n"
		 "    %s\n"
		 "    imap: {\n"
		 "      host = \"%s\";\n"
		 "      user = \"me\";\n"
		 "      password_command = \"echo x\";\n"
		 "      %s\n"
		 "    };\n"
		 "  }\n"
		 ");\n",
		 acct_extra, host, imap_extra);
	return t;
}

static const char *conf(const char *acct_extra, const char *imap_extra)
{
	return conf_host("imap.example.com", acct_extra, imap_extra);
}

static struct config *load_ok(const char *text)
{
	struct config *c = NULL;
	struct err e = { 0 };
	int rc = config_load_string(text, "t.conf", &c, &e);
	if (rc != 0)
		fprintf(stderr, "unexpected error: %s\n", e.msg);
	CHECK_INT(rc, 0);
	return c;
}

#define EXPECT_ERR(text, want)                                                                     \
	do {                                                                                       \
		struct config *c_ = (struct config *)1;                                            \
		struct err e_ = { 0 };                                                             \
		CHECK_INT(config_load_string((text), "t.conf", &c_, &e_), -EINVAL);                \
		CHECK(c_ == NULL);                                                                 \
		CHECK_INT(e_.cls, ERR_CONFIG);                                                     \
		CHECK_STR(e_.msg, (want));                                                         \
		CHECK(strchr(e_.msg, '\n') == NULL);                                               \
	} while (0)

static void test_example_loads(void)
{
	struct config *c = NULL;
	struct err e = { 0 };
	char path[1024];
	snprintf(path, sizeof(path), "%s", data_path("../../../config/mailferry.conf"));
	int rc = config_load(path, &c, &e);
	if (rc)
		fprintf(stderr, "%s\n", e.msg);
	CHECK_INT(rc, 0);
	if (!c)
		return;
	CHECK_INT(c->n_accounts, 2);
	const struct account_conf *w = config_find_account(c, "work");
	const struct account_conf *h = config_find_account(c, "home");
	CHECK(w && h && !config_find_account(c, "nobody"));
	CHECK(w->imap && w->smtp && !w->pop3);
	CHECK(h->pop3 && h->smtp && !h->imap);
	CHECK_STR(w->smtp->server.password_command, "pass show mail/work");
	CHECK_INT(w->smtp->server.port, 587);
	CHECK_STR(h->smtp->server.user, "me");
	CHECK_INT(h->smtp->server.port, 465);
	CHECK_STR(h->smtp->sent, "");
	config_free(&c);
	CHECK(c == NULL);
}

static void test_defaults(void)
{
	setenv("HOME", "/home/t", 1);
	setenv("XDG_STATE_HOME", "/xdg/state", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	struct config *c = load_ok(conf("", ""));
	if (!c)
		return;
	CHECK_STR(c->path, "t.conf");
	CHECK_STR(c->general.state_dir, "/xdg/state/mailferry");
	CHECK_STR(c->general.control_socket, "/run/user/1000/mailferry/ctl.sock");
	CHECK_INT(c->general.log_level, 2);
	const struct account_conf *a = &c->accounts[0];
	CHECK_STR(a->name, "work");
	CHECK_STR(a->maildir, "/m/work");
	CHECK_INT(a->line, 2);
	CHECK_INT(a->layout, LAYOUT_VERBATIM);
	CHECK(a->new_mail_command == NULL && a->post_sync_command == NULL);
	CHECK_INT(a->hook_timeout, 60);
	CHECK(a->max_delete_share == 0.5);
	CHECK_INT(a->min_mass_delete, 20);
	CHECK(!a->special_use_names && !a->pop3 && !a->smtp);
	const struct imap_conf *i = a->imap;
	CHECK_STR(i->server.host, "imap.example.com");
	CHECK_INT(i->server.port, 993);
	CHECK_INT(i->server.tls, TLS_IMPLICIT);
	CHECK(!i->server.allow_plaintext);
	CHECK(i->server.ca_file == NULL && i->server.fingerprint == NULL);
	CHECK(i->server.password == NULL);
	CHECK_STR(i->server.password_command, "echo x");
	CHECK_INT(i->server.auth, AUTH_AUTO);
	CHECK_INT(i->server.timeout, 60);
	CHECK_INT(i->server.line, 6);
	CHECK(i->folders[0] && !i->folders[1]);
	CHECK_STR(i->folders[0], "*");
	CHECK(i->idle[0] && !i->idle[1]);
	CHECK_STR(i->idle[0], "INBOX");
	CHECK_INT(i->poll_interval, 300);
	CHECK_INT(i->keepalive, 300);
	CHECK_INT(i->max_connections, 4);
	CHECK_INT(i->delete_mode, DELETE_EXPUNGE);
	CHECK_INT(i->create_folders, FOLDERS_BOTH);
	CHECK_INT(i->remove_folders, FOLDERS_NONE);
	config_free(&c);

	unsetenv("XDG_STATE_HOME");
	setenv("XDG_RUNTIME_DIR", "relative/ignored", 1);
	c = load_ok(conf("", "tls = \"starttls\";"));
	if (c) {
		CHECK_STR(c->general.state_dir, "/home/t/.local/state/mailferry");
		char sock[64];
		snprintf(sock, sizeof(sock), "/tmp/mailferry-%u/ctl.sock", (unsigned)getuid());
		CHECK_STR(c->general.control_socket, sock);
		CHECK_INT(c->accounts[0].imap->server.port, 143);
	}
	config_free(&c);
	unsetenv("XDG_RUNTIME_DIR");
	c = load_ok(conf("", "tls = \"none\"; allow_plaintext = true;"));
	CHECK(c && c->accounts[0].imap->server.port == 143);
	config_free(&c);
}

static void test_pop3_smtp_defaults(void)
{
	struct config *c = load_ok("accounts = ({ name = \"p\"; maildir = \"/m/p\";\n"
				   "  pop3: { host = \"pop.example.com\"; user = \"u\"; "
				   "password = \"pw\"; auth = \"login\"; };\n"
				   "  smtp: { host = \"smtp.example.com\"; };\n"
				   "});\n");
	if (!c)
		return;
	const struct pop3_conf *p = c->accounts[0].pop3;
	CHECK_INT(p->server.port, 995);
	CHECK_INT(p->poll_interval, 300);
	CHECK(p->keep);
	CHECK_INT(p->delete_after_days, 0);
	const struct smtp_conf *s = c->accounts[0].smtp;
	CHECK_INT(s->server.port, 465);
	CHECK_STR(s->outbox, "Outbox");
	CHECK_STR(s->sent, "Sent");
	/* Taken from the pop3 block. */
	CHECK_STR(s->server.user, "u");
	CHECK_STR(s->server.password, "pw");
	CHECK(s->server.password_command == NULL);
	CHECK_INT(s->server.auth, AUTH_LOGIN);
	CHECK_STR(tls_mode_name(s->server.tls), "implicit");
	config_free(&c);

	/* What the smtp block sets itself wins. */
	c = load_ok(conf("smtp: { host = \"s\"; tls = \"starttls\"; user = \"other\"; "
			 "password = \"p2\"; auth = \"plain\"; };",
			 "auth = \"xoauth2\";"));
	if (!c)
		return;
	const struct server_conf *ss = &c->accounts[0].smtp->server;
	CHECK_INT(ss->port, 587);
	CHECK_STR(ss->user, "other");
	CHECK_STR(ss->password, "p2");
	CHECK(ss->password_command == NULL);
	CHECK_INT(ss->auth, AUTH_PLAIN);
	CHECK_INT(ss->line, 5);
	config_free(&c);
}

static void test_every_key(void)
{
	setenv("HOME", "/home/t", 1);
	setenv("MF_T_BASE", "/base", 1);
	char *text = slurp(data_path("config/every-key.conf"));
	CHECK(text != NULL);
	if (!text)
		return;
	struct config *c = load_ok(text);
	free(text);
	if (!c)
		return;
	CHECK_STR(c->general.state_dir, "/base/state");
	CHECK_STR(c->general.control_socket, "/base/run/ctl.sock");
	CHECK_INT(c->general.log_level, 3);
	CHECK_INT(c->n_accounts, 2);
	const struct account_conf *a = &c->accounts[0];
	CHECK_STR(a->name, "work.mail_1-x");
	CHECK_STR(a->maildir, "/home/t/Mail/work");
	CHECK_INT(a->layout, LAYOUT_MAILDIRPP);
	CHECK_STR(a->new_mail_command, "notmuch new");
	CHECK_STR(a->post_sync_command, "touch /tmp/synced");
	CHECK_INT(a->hook_timeout, 5);
	CHECK(a->max_delete_share == 1.0);
	CHECK_INT(a->min_mass_delete, 0);
	CHECK(a->special_use_names);
	const struct imap_conf *i = a->imap;
	CHECK_STR(i->server.host, "127.0.0.1");
	CHECK_INT(i->server.port, 10143);
	CHECK_INT(i->server.tls, TLS_NONE);
	CHECK(i->server.allow_plaintext);
	CHECK_STR(i->server.ca_file, "/base/ca.pem");
	CHECK_STR(i->server.fingerprint,
		  "0fa300112233445566778899aabbccddeeff00112233445566778899aabbccdd");
	CHECK_STR(i->server.user, "me@example.com");
	CHECK_STR(i->server.password, "hunter2");
	CHECK(i->server.password_command == NULL);
	CHECK_INT(i->server.auth, AUTH_XOAUTH2);
	CHECK_INT(i->server.timeout, 5);
	CHECK_STR(i->folders[0], "INBOX");
	CHECK_STR(i->folders[1], "Lists/*");
	CHECK_STR(i->folders[2], "!Lists/spam");
	CHECK(i->folders[3] == NULL);
	CHECK(i->idle[0] == NULL);
	CHECK_INT(i->poll_interval, 30);
	CHECK_INT(i->keepalive, 120);
	CHECK_INT(i->max_connections, 32);
	CHECK_INT(i->delete_mode, DELETE_TRASH);
	CHECK_INT(i->create_folders, FOLDERS_LOCAL);
	CHECK_INT(i->remove_folders, FOLDERS_BOTH);
	const struct smtp_conf *s = a->smtp;
	CHECK_STR(s->server.host, "::1");
	CHECK_INT(s->server.port, 2525);
	CHECK_INT(s->server.tls, TLS_STARTTLS);
	CHECK_STR(s->server.fingerprint,
		  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	CHECK_STR(s->server.user, "sender");
	CHECK(s->server.password == NULL);
	CHECK_STR(s->server.password_command, "echo smtp");
	CHECK_INT(s->server.auth, AUTH_LOGIN);
	CHECK_INT(s->server.timeout, 3600);
	CHECK_STR(s->outbox, "Queue/out");
	CHECK_STR(s->sent, "");
	const struct account_conf *b = &c->accounts[1];
	CHECK(b->max_delete_share == 0.25);
	CHECK_INT(b->pop3->server.port, 110);
	CHECK_INT(b->pop3->server.auth, AUTH_PLAIN);
	CHECK_INT(b->pop3->poll_interval, 86400);
	CHECK(b->pop3->keep);
	CHECK_INT(b->pop3->delete_after_days, 14);
	config_free(&c);
}

static void test_syntax_errors(void)
{
	EXPECT_ERR("accounts = (\n  {\n    name = ;\n", "t.conf:3: syntax error");
	EXPECT_ERR("general: {\n  log_level = \"info\";\n  log_level = \"debug\";\n};\n",
		   "t.conf:3: syntax error: duplicate setting name");
	EXPECT_ERR("a = [ 1,\n \"x\" ];\n",
		   "t.conf:2: syntax error: mismatched element type in array");
	EXPECT_ERR("# comment\n  @include \"/etc/passwd\"\n",
		   "t.conf:2: @include: not supported; keep the whole configuration in one file");
	EXPECT_ERR("/*\n@include \"x\"\n*/\n",
		   "t.conf:2: @include: not supported; keep the whole configuration in one file");
}

static void test_unknown_keys(void)
{
	EXPECT_ERR(conf("", "hots = \"x\";"),
		   "t.conf:10: accounts[work].imap.hots: unknown key (did you mean \"host\"?)");
	EXPECT_ERR(conf("", "Port = 1;"),
		   "t.conf:10: accounts[work].imap.Port: unknown key (did you mean \"port\"?)");
	EXPECT_ERR(conf("", "colour = \"red\";"),
		   "t.conf:10: accounts[work].imap.colour: unknown key");
	EXPECT_ERR(conf("mail_dir = \"/x\";", ""),
		   "t.conf:5: accounts[work].mail_dir: unknown key (did you mean \"maildir\"?)");
	EXPECT_ERR(conf("", "keep = true;"), "t.conf:10: accounts[work].imap.keep: unknown key");
	EXPECT_ERR(
	    conf("", "folder = [ \"*\" ];"),
	    "t.conf:10: accounts[work].imap.folder: unknown key (did you mean \"folders\"?)");
	EXPECT_ERR("generl: { };\n", "t.conf:1: generl: unknown key (did you mean \"general\"?)");
	EXPECT_ERR("general: {\n  loglevel = \"info\";\n};\n",
		   "t.conf:2: general.loglevel: unknown key (did you mean \"log_level\"?)");
}

static void test_wrong_types(void)
{
	EXPECT_ERR(conf("", "port = \"993\";"),
		   "t.conf:10: accounts[work].imap.port: expected an integer");
	EXPECT_ERR(conf("", "port = 993.0;"),
		   "t.conf:10: accounts[work].imap.port: expected an integer");
	EXPECT_ERR(conf("", "ca_file = 1;"),
		   "t.conf:10: accounts[work].imap.ca_file: expected a string");
	EXPECT_ERR(conf("", "folders = \"INBOX\";"),
		   "t.conf:10: accounts[work].imap.folders: expected a list of strings");
	EXPECT_ERR(conf("", "idle = ( \"INBOX\", 1 );"),
		   "t.conf:10: accounts[work].imap.idle: expected a list of strings");
	EXPECT_ERR(conf("", "idle = [ \"INBOX\", \"\" ];"),
		   "t.conf:10: accounts[work].imap.idle: list entries must not be empty");
	EXPECT_ERR(conf("", "allow_plaintext = \"yes\";"),
		   "t.conf:10: accounts[work].imap.allow_plaintext: expected true or false");
	EXPECT_ERR(conf("max_delete_share = \"half\";", ""),
		   "t.conf:5: accounts[work].max_delete_share: expected a number");
	EXPECT_ERR(conf("pop3 = 1;", ""),
		   "t.conf:5: accounts[work].pop3: expected a block { ... }");
	EXPECT_ERR("general = 1;\n", "t.conf:1: general: expected a block { ... }");
	EXPECT_ERR("accounts = { };\n",
		   "t.conf:1: accounts: expected a list of account blocks: ( { ... }, { ... } )");
	EXPECT_ERR("accounts = [ \"a\" ];\n",
		   "t.conf:1: accounts: expected a list of account blocks: ( { ... }, { ... } )");
	EXPECT_ERR("accounts = ( \"a\" );\n",
		   "t.conf:1: accounts[1]: expected an account block { ... }");
	EXPECT_ERR(conf("smtp: { host = \"\"; };", ""),
		   "t.conf:5: accounts[work].smtp.host: must not be empty");
}

static void test_bad_values(void)
{
	EXPECT_ERR(
	    conf("", "tls = \"ssl\";"),
	    "t.conf:10: accounts[work].imap.tls: unknown value \"ssl\" (expected \"implicit\", "
	    "\"starttls\" or \"none\")");
	EXPECT_ERR(
	    conf("", "auth = \"cram-md5\";"),
	    "t.conf:10: accounts[work].imap.auth: unknown value \"cram-md5\" (expected \"auto\", "
	    "\"plain\", \"login\", \"xoauth2\" or \"oauthbearer\")");
	EXPECT_ERR(conf("", "delete = \"move\\n\";"),
		   "t.conf:10: accounts[work].imap.delete: unknown value \"move\\x0a\" (expected "
		   "\"expunge\" or \"trash\")");
	EXPECT_ERR(
	    conf("layout = \"mh\";", ""),
	    "t.conf:5: accounts[work].layout: unknown value \"mh\" (expected \"verbatim\" or "
	    "\"maildir++\")");
	EXPECT_ERR(conf("", "port = 0;"),
		   "t.conf:10: accounts[work].imap.port: must be between 1 and 65535 (got 0)");
	EXPECT_ERR(conf("", "port = 65536;"),
		   "t.conf:10: accounts[work].imap.port: must be between 1 and 65535 (got 65536)");
	EXPECT_ERR(
	    conf("", "port = 99999999999L;"),
	    "t.conf:10: accounts[work].imap.port: must be between 1 and 65535 (got 99999999999)");
	EXPECT_ERR(
	    conf("", "poll_interval = 0;"),
	    "t.conf:10: accounts[work].imap.poll_interval: must be between 1 and 86400 (got 0)");
	EXPECT_ERR(
	    conf("", "keepalive = 1800;"),
	    "t.conf:10: accounts[work].imap.keepalive: must be between 5 and 1739 (got 1800)");
	EXPECT_ERR(conf("", "timeout = 0;"),
		   "t.conf:10: accounts[work].imap.timeout: must be between 1 and 3600 (got 0)");
	EXPECT_ERR(
	    conf("", "max_connections = 33;"),
	    "t.conf:10: accounts[work].imap.max_connections: must be between 1 and 32 (got 33)");
	EXPECT_ERR(
	    conf("min_mass_delete = -1;", ""),
	    "t.conf:5: accounts[work].min_mass_delete: must be between 0 and 2147483647 (got -1)");
	EXPECT_ERR(conf("hook_timeout = 0;", ""),
		   "t.conf:5: accounts[work].hook_timeout: must be between 1 and 86400 (got 0)");
	EXPECT_ERR(
	    conf("max_delete_share = 0;", ""),
	    "t.conf:5: accounts[work].max_delete_share: must be greater than 0 and at most 1 "
	    "(got 0)");
	EXPECT_ERR(
	    conf("max_delete_share = 1.5;", ""),
	    "t.conf:5: accounts[work].max_delete_share: must be greater than 0 and at most 1 "
	    "(got 1.5)");
	EXPECT_ERR(
	    conf("", "folders = [ ];"),
	    "t.conf:10: accounts[work].imap.folders: selects no folder; leave it out to sync "
	    "every folder");
	EXPECT_ERR(conf_host("imap example", "", ""),
		   "t.conf:7: accounts[work].imap.host: must be a host name or an IP address");
	EXPECT_ERR("general: { log_level = \"verbose\"; };\n",
		   "t.conf:1: general.log_level: unknown value \"verbose\" (expected \"error\", "
		   "\"warn\", \"info\", \"debug\" or \"trace\")");
}

static void test_fingerprints(void)
{
	static const char *const bad[] = {
		"fingerprint = "
		"\"0fa300112233445566778899aabbccddeeff00112233445566778899aabbccdd\";",
		"fingerprint = \"sha1:0fa300112233445566778899aabbccddeeff0011\";",
		"fingerprint = "
		"\"sha256:0fa300112233445566778899aabbccddeeff00112233445566778899aabbcc\";",
		"fingerprint = "
		"\"sha256:0fa300112233445566778899aabbccddeeff00112233445566778899aabbccdg\";",
		"fingerprint = "
		"\"sha256:0f:a3:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:"
		"22:33:44:55:66:77:88:99:aa:bb:cc:dd:\";",
		"fingerprint = "
		"\"sha256:0fa:3:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:"
		"22:33:44:55:66:77:88:99:aa:bb:cc:dd\";",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		EXPECT_ERR(
		    conf("", bad[i]),
		    "t.conf:10: accounts[work].imap.fingerprint: must be \"sha256:\" followed by "
		    "64 hex digits (optionally as colon-separated pairs)");
	struct config *c = load_ok(conf(
	    "", "fingerprint = "
		"\"Sha256:ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789\";"));
	CHECK(c != NULL);
	if (c)
		CHECK_STR(c->accounts[0].imap->server.fingerprint,
			  "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
	config_free(&c);
}

static void test_missing_keys(void)
{
	EXPECT_ERR("general: { };\n",
		   "t.conf: accounts: required key is missing (define at least one account)");
	EXPECT_ERR("\naccounts = ( );\n",
		   "t.conf:2: accounts: is empty; define at least one account");
	EXPECT_ERR("accounts = (\n  { maildir = \"/m\"; }\n);\n",
		   "t.conf:2: accounts[1].name: required key is missing");
	EXPECT_ERR("accounts = (\n  { name = \"a\";\n    imap: { host = \"h\"; user = \"u\"; "
		   "password = \"p\"; };\n  }\n);\n",
		   "t.conf:2: accounts[a].maildir: required key is missing");
	EXPECT_ERR("accounts = (\n  { name = \"a\"; maildir = \"/m\";\n"
		   "    imap: {\n      user = \"u\"; password = \"p\"; };\n  }\n);\n",
		   "t.conf:3: accounts[a].imap.host: required key is missing");
	EXPECT_ERR("accounts = (\n  { name = \"a\"; maildir = \"/m\";\n"
		   "    pop3: {\n      host = \"h\"; password = \"p\"; };\n  }\n);\n",
		   "t.conf:3: accounts[a].pop3.user: required key is missing");
	EXPECT_ERR("accounts = (\n  { name = \"a\"; maildir = \"/m\";\n"
		   "    imap: {\n      host = \"h\"; user = \"u\"; };\n  }\n);\n",
		   "t.conf:3: accounts[a].imap.password_command: required key is missing (or set "
		   "password)");
	EXPECT_ERR("accounts = (\n  { name = \"a\"; maildir = \"/m\"; }\n);\n",
		   "t.conf:2: accounts[a]: needs an imap or a pop3 block");
	EXPECT_ERR("accounts = (\n  { name = \"a\"; maildir = \"/m\";\n"
		   "    smtp: { host = \"s\"; };\n  }\n);\n",
		   "t.conf:2: accounts[a]: needs an imap or a pop3 block");
	EXPECT_ERR(conf("pop3: { host = \"p\"; user = \"u\"; password_command = \"c\"; };", ""),
		   "t.conf:2: accounts[work]: has both an imap and a pop3 block; an account has "
		   "exactly one (make two accounts)");
}

static void test_password_rules(void)
{
	EXPECT_ERR(
	    conf("", "password = \"x\";"),
	    "t.conf:10: accounts[work].imap.password: both password and password_command are "
	    "set; keep one");
	EXPECT_ERR(conf("", "password = \"\";"),
		   "t.conf:10: accounts[work].imap.password: must not be empty");
	const char *plain =
	    "t.conf:10: accounts[work].imap.tls: \"none\" would send the password "
	    "unencrypted to \"imap.example.com\"; use \"implicit\" or \"starttls\", or "
	    "set allow_plaintext = true";
	EXPECT_ERR(conf("", "tls = \"none\";"), plain);
	EXPECT_ERR(conf_host("10.0.0.1", "", "tls = \"none\";"),
		   "t.conf:10: accounts[work].imap.tls: \"none\" would send the password "
		   "unencrypted to \"10.0.0.1\"; use \"implicit\" or \"starttls\", or set "
		   "allow_plaintext = true");
	EXPECT_ERR(conf_host("128.0.0.1", "", "tls = \"none\";"),
		   "t.conf:10: accounts[work].imap.tls: \"none\" would send the password "
		   "unencrypted to \"128.0.0.1\"; use \"implicit\" or \"starttls\", or set "
		   "allow_plaintext = true");
	static const char *const loopback[] = { "localhost", "LocalHost", "127.0.0.1",
						"127.1.2.3", "::1",       "::ffff:127.0.0.1" };
	for (size_t i = 0; i < ARRAY_SIZE(loopback); i++) {
		struct config *c = load_ok(conf_host(loopback[i], "", "tls = \"none\";"));
		CHECK(c && c->accounts[0].imap->server.port == 143);
		config_free(&c);
	}
	struct config *c = load_ok(conf("", "tls = \"none\"; allow_plaintext = true;"));
	CHECK(c != NULL);
	config_free(&c);
	/* The smtp block is checked with the password it inherits. */
	EXPECT_ERR(
	    conf("smtp: { host = \"smtp.example.com\"; tls = \"none\"; };", ""),
	    "t.conf:5: accounts[work].smtp.tls: \"none\" would send the password unencrypted "
	    "to \"smtp.example.com\"; use \"implicit\" or \"starttls\", or set allow_plaintext "
	    "= true");
	EXPECT_ERR(conf("smtp: { host = \"s\"; password = \"a\"; password_command = \"b\"; };", ""),
		   "t.conf:5: accounts[work].smtp.password_command: both password and "
		   "password_command are set; keep one");
}

static void test_accounts_rules(void)
{
	const char *dup =
	    "accounts = (\n"
	    "  { name = \"a\"; maildir = \"/m/a\";\n"
	    "    imap: { host = \"h\"; user = \"u\"; password_command = \"c\"; }; },\n"
	    "  {\n"
	    "    name = \"a\"; maildir = \"/m/b\";\n"
	    "    imap: { host = \"h\"; user = \"u\"; password_command = \"c\"; }; }\n"
	    ");\n";
	EXPECT_ERR(
	    dup, "t.conf:5: accounts[2].name: \"a\" is already the name of the account on line 2");
	const char *same =
	    "accounts = (\n"
	    "  { name = \"a\"; maildir = \"/m/a/\";\n"
	    "    imap: { host = \"h\"; user = \"u\"; password_command = \"c\"; }; },\n"
	    "  {\n"
	    "    name = \"b\";\n"
	    "    maildir = \"/m//a\";\n"
	    "    imap: { host = \"h\"; user = \"u\"; password_command = \"c\"; }; }\n"
	    ");\n";
	EXPECT_ERR(same,
		   "t.conf:6: accounts[b].maildir: is also the maildir of account \"a\" (line 2)");
	const char *inside =
	    "accounts = (\n"
	    "  { name = \"a\"; maildir = \"/m\";\n"
	    "    imap: { host = \"h\"; user = \"u\"; password_command = \"c\"; }; },\n"
	    "  { name = \"b\"; maildir = \"/m/b\";\n"
	    "    imap: { host = \"h\"; user = \"u\"; password_command = \"c\"; }; }\n"
	    ");\n";
	EXPECT_ERR(inside,
		   "t.conf:4: accounts[b].maildir: lies inside the maildir of account \"a\" "
		   "(line 2)");
	const char *holds =
	    "accounts = (\n"
	    "  { name = \"a\"; maildir = \"/m/a\";\n"
	    "    imap: { host = \"h\"; user = \"u\"; password_command = \"c\"; }; },\n"
	    "  { name = \"b\"; maildir = \"/m\";\n"
	    "    imap: { host = \"h\"; user = \"u\"; password_command = \"c\"; }; }\n"
	    ");\n";
	EXPECT_ERR(holds, "t.conf:4: accounts[b].maildir: contains the maildir of account \"a\" "
			  "(line 2)");
	const char *prefix =
	    "accounts = (\n"
	    "  { name = \"a\"; maildir = \"/m/a\";\n"
	    "    imap: { host = \"h\"; user = \"u\"; password_command = \"c\"; }; },\n"
	    "  { name = \"b\"; maildir = \"/m/ab\";\n"
	    "    imap: { host = \"h\"; user = \"u\"; password_command = \"c\"; }; }\n"
	    ");\n";
	struct config *c = load_ok(prefix);
	CHECK(c && c->n_accounts == 2);
	config_free(&c);

	const char *msg =
	    "must be 1 to 64 letters, digits, \".\", \"_\" or \"-\", not starting with "
	    "\".\" or \"-\" (it is used in file names and commands)";
	static const char *const bad[] = { "", "wo rk", "../x", "-x", ".hidden", "a/b", "é" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char text[256], want[512];
		snprintf(text, sizeof(text),
			 "accounts = (\n  {\n    name = \"%s\"; maildir = \"/m\";\n  }\n);\n",
			 bad[i]);
		snprintf(want, sizeof(want), "t.conf:3: accounts[1].name: %s", msg);
		EXPECT_ERR(text, want);
	}
	EXPECT_ERR("accounts = ({\n name = 1; })\n",
		   "t.conf:2: accounts[1].name: expected a string");

	setenv("XDG_STATE_HOME", "/m/work/.state", 1);
	EXPECT_ERR(conf("", ""),
		   "t.conf:4: accounts[work].maildir: holds general.state_dir "
		   "(/m/work/.state/mailferry); keep the sync state outside the Maildir "
		   "tree");
	unsetenv("XDG_STATE_HOME");
}

static void test_smtp_and_pop3_rules(void)
{
	EXPECT_ERR(
	    conf("smtp: { host = \"s\"; outbox = \"../out\"; };", ""),
	    "t.conf:5: accounts[work].smtp.outbox: must be a folder name under the account's "
	    "maildir (no leading or doubled \"/\", no \".\" or \"..\" parts, no control "
	    "characters)");
	EXPECT_ERR(conf("smtp: { host = \"s\"; outbox = \"\"; };", ""),
		   "t.conf:5: accounts[work].smtp.outbox: must not be empty");
	EXPECT_ERR(conf("smtp: { host = \"s\"; sent = \"/Sent\"; };", ""),
		   "t.conf:5: accounts[work].smtp.sent: must be a folder name under the account's "
		   "maildir (no leading or doubled \"/\", no \".\" or \"..\" parts, no control "
		   "characters)");
	EXPECT_ERR(conf("smtp: { host = \"s\"; folders = [ \"x\" ]; };", ""),
		   "t.conf:5: accounts[work].smtp.folders: unknown key");
	EXPECT_ERR("accounts = ({ name = \"p\"; maildir = \"/m/p\";\n"
		   "  pop3: { host = \"h\"; user = \"u\"; password = \"p\";\n"
		   "    keep = false; delete_after_days = 3; };\n});\n",
		   "t.conf:3: accounts[p].pop3.delete_after_days: applies only with keep = true "
		   "(keep = false deletes each message as soon as it is fetched)");
}

static void test_paths(void)
{
	struct err e = { 0 };
	setenv("HOME", "/home/t", 1);
	setenv("MF_T_A", "alpha", 1);
	setenv("MF_T_EMPTY", "", 1);
	unsetenv("MF_T_UNSET");
	static const char *const ok[][2] = {
		{ "~", "/home/t" },
		{ "~/Mail", "/home/t/Mail" },
		{ "/x/$MF_T_A/y", "/x/alpha/y" },
		{ "/x/${MF_T_A}beta", "/x/alphabeta" },
		{ "$MF_T_A$MF_T_A", "alphaalpha" },
		{ "/cost/$5/a$", "/cost/$5/a$" },
		{ "/no~tilde", "/no~tilde" },
		{ "", "" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		char *x = config_expand_path(ok[i][0], &e);
		CHECK_STR(x, ok[i][1]);
		free(x);
	}
	static const char *const bad[][2] = {
		{ "/a/$MF_T_UNSET/b", "$MF_T_UNSET is not set" },
		{ "${MF_T_UNSET}", "$MF_T_UNSET is not set" },
		{ "/a/$MF_T_EMPTY", "$MF_T_EMPTY is empty" },
		{ "/a/${MF_T_A", "\"${\" must be followed by a variable name and \"}\"" },
		{ "/a/${}", "\"${\" must be followed by a variable name and \"}\"" },
		{ "~bob/Mail",
		  "only a leading ~ or ~/ is expanded (not ~user); write the full path" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err_clear(&e);
		CHECK(config_expand_path(bad[i][0], &e) == NULL);
		CHECK_STR(e.msg, bad[i][1]);
		CHECK_INT(e.cls, ERR_CONFIG);
	}
	EXPECT_ERR("general: {\n  state_dir = \"state\";\n};\n",
		   "t.conf:2: general.state_dir: must be an absolute path or start with ~ (got "
		   "\"state\")");
	EXPECT_ERR("general: {\n  control_socket = \"$MF_T_UNSET/ctl\";\n};\n",
		   "t.conf:2: general.control_socket: $MF_T_UNSET is not set");
	EXPECT_ERR("accounts = ({ name = \"a\";\n  maildir = \"Mail\"; })\n",
		   "t.conf:2: accounts[a].maildir: must be an absolute path or start with ~ (got "
		   "\"Mail\")");
	EXPECT_ERR(
	    conf("", "ca_file = \"~x/ca.pem\";"),
	    "t.conf:10: accounts[work].imap.ca_file: only a leading ~ or ~/ is expanded (not "
	    "~user); write the full path");
	char sock[300], want[400];
	snprintf(sock, sizeof(sock), "general: { control_socket = \"/%0200d\"; };\n", 0);
	snprintf(want, sizeof(want),
		 "t.conf:1: general.control_socket: is 201 bytes long; a unix socket path has at "
		 "most 107");
	EXPECT_ERR(sock, want);
	setenv("XDG_CONFIG_HOME", "/xdg/conf", 1);
	char *p = config_default_path();
	CHECK_STR(p, "/xdg/conf/mailferry/config");
	free(p);
	unsetenv("XDG_CONFIG_HOME");
	p = config_default_path();
	CHECK_STR(p, "/home/t/.config/mailferry/config");
	free(p);
}

/* mailferryctl's lenient look at a config with an error elsewhere. */
static void test_control_socket_of_a_broken_config(void)
{
	char path[128];
	struct err e = { 0 };
	setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
	snprintf(path, sizeof(path), "%s/broken", tmpdir);
	write_file(path,
		   "general: { control_socket = \"/srv//ctl/sock\"; colour = 1; };\n"
		   "accounts = ();\n",
		   0600);
	char *sock = config_control_socket(path, &e);
	CHECK_STR(sock, "/srv/ctl/sock");
	free(sock);
	write_file(path, "general: { log_level = \"loud\"; };\n", 0600);
	sock = config_control_socket(path, &e);
	CHECK_STR(sock, "/run/user/7/mailferry/ctl.sock");
	free(sock);
	write_file(path, "general: { control_socket = \"/srv/s\" ;; {\n", 0600);
	sock = config_control_socket(path, &e);
	CHECK_STR(sock, "/run/user/7/mailferry/ctl.sock");
	free(sock);
	write_file(path, "@include \"/etc/passwd\"\ngeneral: { control_socket = \"/a\"; };\n",
		   0600);
	sock = config_control_socket(path, &e);
	CHECK_STR(sock, "/run/user/7/mailferry/ctl.sock");
	free(sock);
	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	CHECK(config_control_socket(path, &e) == NULL);
	CHECK(strstr(e.msg, "missing: cannot read: No such file or directory") != NULL);
}

static void test_file_permissions(void)
{
	char path[128];
	struct config *c = NULL;
	struct err e = { 0 };
	snprintf(path, sizeof(path), "%s/config", tmpdir);
	const char *with_pw =
	    "accounts = ({ name = \"a\"; maildir = \"/m\";\n"
	    "  imap: { host = \"h\"; user = \"u\"; password = \"sekrit\"; }; });\n";
	write_file(path, with_pw, 0644);
	CHECK_INT(config_load(path, &c, &e), -EINVAL);
	CHECK(c == NULL);
	char want[512];
	snprintf(want, sizeof(want),
		 "%s: holds a password but is readable by group or others; run: chmod 600 %s", path,
		 path);
	CHECK_STR(e.msg, want);
	CHECK_INT(e.cls, ERR_CONFIG);
	write_file(path, with_pw, 0640);
	CHECK_INT(config_load(path, &c, &e), -EINVAL);
	CHECK_STR(e.msg, want);
	write_file(path, with_pw, 0600);
	CHECK_INT(config_load(path, &c, &e), 0);
	CHECK(c && strcmp(c->accounts[0].imap->server.password, "sekrit") == 0);
	CHECK(c && strcmp(c->path, path) == 0);
	config_free(&c);
	write_file(path, conf("", ""), 0644);
	CHECK_INT(config_load(path, &c, &e), 0);
	config_free(&c);
	/* Errors in a file name the file. */
	write_file(path, "accounts = (\n  { name = 5; }\n);\n", 0600);
	CHECK_INT(config_load(path, &c, &e), -EINVAL);
	snprintf(want, sizeof(want), "%s:2: accounts[1].name: expected a string", path);
	CHECK_STR(e.msg, want);

	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	CHECK_INT(config_load(path, &c, &e), -ENOENT);
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
	CHECK_STR(e.msg, want);
	CHECK_INT(e.cls, ERR_CONFIG);
	CHECK_INT(config_load(tmpdir, &c, &e), -EISDIR);
	snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmpdir);
	CHECK_STR(e.msg, want);
	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	CHECK(mkfifo(path, 0600) == 0);
	CHECK_INT(config_load(path, &c, &e), -EINVAL);
	snprintf(want, sizeof(want), "%s: cannot read: not a regular file", path);
	CHECK_STR(e.msg, want);
}

/* Password fetching on a real loop. */
struct fetch {
	int calls;
	char secret[256];
	bool failed;
	struct err err;
};

static void on_secret(void *ctx, const char *secret, const struct err *err)
{
	struct fetch *f = ctx;
	f->calls++;
	if (secret) {
		snprintf(f->secret, sizeof(f->secret), "%s", secret);
	} else {
		f->failed = true;
		f->err = *err;
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct server_conf server(const char *password, const char *command)
{
	struct server_conf sc = { .host = "imap.example.com" };
	sc.password = (char *)password;
	sc.password_command = (char *)command;
	return sc;
}

static struct fetch fetch(const char *password, const char *command, unsigned timeout_ms)
{
	uv_loop_t loop;
	struct fetch f = { 0 };
	struct server_conf sc = server(password, command);
	uv_loop_init(&loop);
	secret_fetch(&loop, &sc, timeout_ms, on_secret, &f);
	CHECK_INT(f.calls, 0); /* never from inside secret_fetch */
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(uv_loop_close(&loop), 0);
	CHECK_INT(f.calls, 1);
	return f;
}

static void check_secret(const char *command, const char *want)
{
	struct fetch f = fetch(NULL, command, 5000);
	CHECK(!f.failed);
	CHECK_STR(f.secret, want);
	if (f.failed)
		fprintf(stderr, "  %s: %s\n", command, f.err.msg);
}

static void check_fetch_error(const char *command, enum err_class cls, const char *want)
{
	struct fetch f = fetch(NULL, command, 5000);
	CHECK(f.failed);
	CHECK_INT(f.err.cls, cls);
	CHECK_STR(f.err.msg, want);
}

static void test_secret_command(void)
{
	check_secret("echo s3cret", "s3cret");
	check_secret("printf 'first\\nsecond\\n'", "first");
	check_secret("printf 'crlf\\r\\n'", "crlf");
	check_secret("printf 'no newline'", "no newline");
	check_secret("printf '  spaced pass  \\n'", "  spaced pass  ");
	check_secret("echo pw; head -c 100000 /dev/zero", "pw");
	check_secret("echo noise >&2; echo pw", "pw");
	check_fetch_error("echo 'gpg: decryption failed' >&2; echo more >&2; exit 3", ERR_CONFIG,
			  "password_command for imap.example.com: exited with status 3: gpg: "
			  "decryption failed");
	check_fetch_error("exit 1", ERR_CONFIG,
			  "password_command for imap.example.com: exited with status 1");
	check_fetch_error("true", ERR_CONFIG,
			  "password_command for imap.example.com: printed nothing on stdout");
	check_fetch_error("echo; echo second", ERR_CONFIG,
			  "password_command for imap.example.com: printed nothing on stdout");
	check_fetch_error("echo 'pass: not found' >&2", ERR_CONFIG,
			  "password_command for imap.example.com: printed nothing on stdout: pass: "
			  "not found");
	check_fetch_error(
	    "kill -TERM $$", ERR_CONFIG,
	    "password_command for imap.example.com: killed by signal 15 (Terminated)");
	check_fetch_error("head -c 9000 /dev/zero | tr '\\0' a", ERR_CONFIG,
			  "password_command for imap.example.com: the first line of its output is "
			  "over 8 KiB");
	check_fetch_error(
	    "printf 'bad\\033[31m red\\n' >&2; exit 2", ERR_CONFIG,
	    "password_command for imap.example.com: exited with status 2: bad?[31m red");
}

static pid_t read_pid(FILE *f)
{
	long pid = 0;
	return fscanf(f, "%ld", &pid) == 1 ? (pid_t)pid : 0;
}

/* Gone, or a zombie waiting for a reaper that is not us. */
static bool pid_dead(pid_t pid)
{
	char path[64], stat[256] = "";
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	const char *r = strrchr(stat, ')');
	return r && r[1] == ' ' && r[2] == 'Z';
}

static void test_secret_timeout(void)
{
	char pidfile[96], cmd[320];
	snprintf(pidfile, sizeof(pidfile), "%s/pids", tmpdir);
	/* The shell and a background child: the whole group must go. */
	snprintf(cmd, sizeof(cmd), "echo $$ > %s; sleep 30 & echo $! >> %s; wait", pidfile,
		 pidfile);
	double t0 = now_s();
	struct fetch f = fetch(NULL, cmd, 300);
	double took = now_s() - t0;
	CHECK(took >= 0.25 && took < 5);
	CHECK(f.failed);
	CHECK_INT(f.err.cls, ERR_TEMP);
	CHECK_STR(f.err.msg, "password_command for imap.example.com: timed out after 0.3 s");
	FILE *pf = fopen(pidfile, "r");
	CHECK(pf != NULL);
	if (!pf)
		return;
	pid_t sh = read_pid(pf), bg = read_pid(pf);
	fclose(pf);
	CHECK(sh > 0 && bg > 0);
	/* The shell is our child and was reaped before the callback. */
	CHECK(kill(sh, 0) < 0 && errno == ESRCH);
	for (int i = 0; i < 100 && !pid_dead(bg); i++)
		usleep(10000);
	CHECK(pid_dead(bg));
}

/* A command that exits but leaves a background process holding stdout. */
static void test_secret_exit_grace(void)
{
	char pidfile[96], cmd[320];
	snprintf(pidfile, sizeof(pidfile), "%s/bgpid", tmpdir);
	snprintf(cmd, sizeof(cmd), "echo pw; sleep 10 & echo $! > %s", pidfile);
	double t0 = now_s();
	struct fetch f = fetch(NULL, cmd, 5000);
	CHECK(now_s() - t0 < 2);
	CHECK(!f.failed);
	CHECK_STR(f.secret, "pw");
	FILE *pf = fopen(pidfile, "r");
	if (pf) {
		pid_t bg = read_pid(pf);
		if (bg > 0)
			kill(bg, SIGKILL);
		fclose(pf);
	}
}

static void test_secret_inline(void)
{
	struct fetch f = fetch("hunter2", NULL, 1000);
	CHECK(!f.failed);
	CHECK_STR(f.secret, "hunter2");
	/* A configured password wins; the command is not run. */
	f = fetch("pw", "exit 1", 1000);
	CHECK_STR(f.secret, "pw");
	f = fetch(NULL, NULL, 1000);
	CHECK(f.failed);
	CHECK_STR(f.err.msg, "imap.example.com: neither password nor password_command is set");
}

static void cancel_from_timer(uv_timer_t *t)
{
	secret_cancel(t->data);
	uv_close((uv_handle_t *)t, NULL);
}

static void test_secret_cancel(void)
{
	uv_loop_t loop;
	uv_timer_t timer;
	struct fetch f = { 0 };
	uv_loop_init(&loop);
	struct server_conf running = server(NULL, "sleep 30");
	struct server_conf inline_pw = server("pw", NULL);
	struct server_conf quick = server(NULL, "echo pw");
	struct secret_req *a = secret_fetch(&loop, &running, 10000, on_secret, &f);
	struct secret_req *b = secret_fetch(&loop, &inline_pw, 10000, on_secret, &f);
	struct secret_req *c = secret_fetch(&loop, &quick, 10000, on_secret, &f);
	secret_cancel(b);
	secret_cancel(c);
	/* a is cancelled once sleep is surely running. */
	uv_timer_init(&loop, &timer);
	timer.data = a;
	uv_timer_start(&timer, cancel_from_timer, 100, 0);
	double t0 = now_s();
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(now_s() - t0 < 5);
	CHECK_INT(f.calls, 0);
	CHECK_INT(uv_loop_close(&loop), 0);
}

/* Cancelling from inside the callback is harmless. */
static struct secret_req *self_req;
static void on_secret_cancel_self(void *ctx, const char *secret, const struct err *err)
{
	on_secret(ctx, secret, err);
	secret_cancel(self_req);
}

static void test_secret_cancel_in_callback(void)
{
	uv_loop_t loop;
	struct fetch f = { 0 };
	struct server_conf sc = server(NULL, "echo pw");
	uv_loop_init(&loop);
	self_req = secret_fetch(&loop, &sc, 5000, on_secret_cancel_self, &f);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_INT(f.calls, 1);
	CHECK_STR(f.secret, "pw");
	CHECK_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mf-test-config-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_example_loads);
	RUN(test_defaults);
	RUN(test_pop3_smtp_defaults);
	RUN(test_every_key);
	RUN(test_syntax_errors);
	RUN(test_unknown_keys);
	RUN(test_wrong_types);
	RUN(test_bad_values);
	RUN(test_fingerprints);
	RUN(test_missing_keys);
	RUN(test_password_rules);
	RUN(test_accounts_rules);
	RUN(test_smtp_and_pop3_rules);
	RUN(test_paths);
	RUN(test_file_permissions);
	RUN(test_control_socket_of_a_broken_config);
	RUN(test_secret_command);
	RUN(test_secret_timeout);
	RUN(test_secret_exit_grace);
	RUN(test_secret_inline);
	RUN(test_secret_cancel);
	RUN(test_secret_cancel_in_callback);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	CHECK_DONE();
}
