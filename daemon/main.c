/* mailferryd: arguments, start-up, and the choice of mode. No protocol logic
 * lives here. */
#include "check.h"
#include "config/config.h"
#include "core/log.h"
#include "daemon.h"
#include "once.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

enum mode { MODE_DAEMON, MODE_CHECK, MODE_ONCE };

static const char usage[] =
	"usage: mailferryd [-c FILE] [--once] [--check] [--allow-mass-delete] [-v|-q]\n"
	"                  [--version] [--help]\n"
	"\n"
	"Keeps IMAP accounts and local Maildir folders in step.\n"
	"\n"
	"  -c, --config FILE   the config file (default: $XDG_CONFIG_HOME/mailferry/config)\n"
	"      --once          sync every account once, both ways, print one summary\n"
	"                      line per account, and exit\n"
	"      --check         validate the config, log in to every server, list its\n"
	"                      folders, print one line per account, and exit\n"
	"      --allow-mass-delete\n"
	"                      let this sync delete more than max_delete_share of a\n"
	"                      folder (an emptied Maildir is otherwise not trusted)\n"
	"  -v, --verbose       more log detail (twice: protocol traces, secrets redacted)\n"
	"  -q, --quiet         only warnings and errors (twice: only errors)\n"
	"      --version       print the version and exit\n"
	"  -h, --help          print this help and exit\n"
	"\n"
	"Without --once or --check it runs in the foreground as the daemon.\n"
	"Exit status: 0 success, 1 a server or account failed, 2 config or usage error.\n";

struct args {
	const char *config;
	enum mode mode;
	bool allow_mass_delete;
	int verbosity; /* relative to the config's log_level */
	bool verbosity_set;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "check", no_argument, NULL, 'C' },
		{ "once", no_argument, NULL, 'O' },
		{ "allow-mass-delete", no_argument, NULL, 'M' },
		{ "verbose", no_argument, NULL, 'v' },	    { "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },	    { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "c:vqh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			a->config = optarg;
			break;
		case 'C':
		case 'O':
			if (a->mode != MODE_DAEMON) {
				fputs("mailferryd: --once and --check exclude each other\n", stderr);
				return -1;
			}
			a->mode = ch == 'C' ? MODE_CHECK : MODE_ONCE;
			break;
		case 'M':
			a->allow_mass_delete = true;
			break;
		case 'v':
		case 'q':
			a->verbosity += ch == 'v' ? 1 : -1;
			a->verbosity_set = true;
			break;
		case 'V':
			printf("mailferryd %s\n", MF_VERSION);
			exit(0);
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mailferryd: unexpected argument: %s\n", argv[optind]);
		fputs(usage, stderr);
		return -1;
	}
	return 0;
}

/* The level -v and -q ask for, or -1 when they were not given and the
 * config's log_level decides (also after a reload). */
static int forced_log_level(const struct args *a)
{
	if (!a->verbosity_set)
		return -1;
	int level = LOG_INFO + a->verbosity;
	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_TRACE)
		level = LOG_TRACE;
	return level;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	if (parse_args(argc, argv, &a) < 0)
		return 2;
	log_init(LOG_INFO);
	/* A server that hangs up is an error code on the write, not a death. */
	signal(SIGPIPE, SIG_IGN);

	char *default_path = a.config ? NULL : config_default_path();
	const char *path = a.config ? a.config : default_path;
	struct config *cfg = NULL;
	struct err err = { 0 };
	if (config_load(path, &cfg, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		free(default_path);
		return 2;
	}
	int forced_level = forced_log_level(&a);
	log_set_level((enum log_level)(forced_level >= 0 ? forced_level : cfg->general.log_level));

	uv_loop_t loop;
	uv_loop_init(&loop);
	int rc;
	if (a.mode == MODE_CHECK)
		rc = check_run(&loop, cfg);
	else if (a.mode == MODE_ONCE)
		rc = once_run(&loop, cfg, a.allow_mass_delete);
	else
		rc = daemon_run(&loop, &cfg, path, forced_level);
	config_free(&cfg);
	free(default_path);
	uv_loop_close(&loop);
	return rc;
}
