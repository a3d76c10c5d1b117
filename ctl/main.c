/* mailferryctl: the control client of mailferryd. The control socket it
 * talks to is not built yet, so for now it knows its commands and says so. */
#include <stdio.h>
#include <string.h>

static const char usage[] =
	"usage: mailferryctl [-c FILE] [-s SOCKET] [--json] COMMAND [ARGS]\n"
	"\n"
	"Commands (talk to a running mailferryd):\n"
	"  status [ACCOUNT]              accounts, connections, folders, last sync, errors\n"
	"  sync [ACCOUNT [FOLDER]] [--wait] [--allow-mass-delete]\n"
	"  pause [ACCOUNT] | resume [ACCOUNT]\n"
	"  reload                        re-read the config (like SIGHUP)\n"
	"  outbox [list | retry ID | drop ID]\n"
	"  sendmail [-a ACCOUNT] [-t] [-f FROM] [-i|-oi] [RECIPIENT...]\n"
	"  stop\n"
	"\n"
	"Exit status: 0 success, 1 the daemon reported a failure, 2 usage error,\n"
	"3 daemon not reachable.\n";

int main(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("mailferryctl %s\n", MF_VERSION);
		return 0;
	}
	fputs("mailferryctl: the control socket is not available in this version\n", stderr);
	fputs(usage, stderr);
	return 2;
}
