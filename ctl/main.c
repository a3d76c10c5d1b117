/* mailferryctl: steers a running mailferryd through its control socket
 * (daemon/ctl/request.h has the protocol). It only carries words there and
 * the answer back; the daemon does the work and writes the text. */
#include "config/config.h"
#include "core/buf.h"
#include "ctl/request.h"
#include "ctl/sendmail.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

static const char usage[] =
	"usage: mailferryctl [-c FILE] [-s SOCKET] [--json] COMMAND [ARGS]\n"
	"\n"
	"Commands (talk to a running mailferryd):\n"
	"  status [ACCOUNT]              accounts, connections, folders, last sync, errors,\n"
	"                                outbox\n"
	"  sync [ACCOUNT [FOLDER]] [--wait] [--allow-mass-delete]\n"
	"                                sync now; --wait returns when done\n"
	"  pause [ACCOUNT] | resume [ACCOUNT]\n"
	"  reload                        re-read the config (like SIGHUP)\n"
	"  log-level LEVEL               error, warn, info, debug or trace, until reload\n"
	"  outbox [list [ACCOUNT]]       messages waiting to be sent, failed ones and why\n"
	"  outbox retry ID               send a failed or waiting message now\n"
	"  outbox drop ID                remove a message from the outbox\n"
	"  stop                          stop the daemon\n"
	"\n"
	"Without the daemon:\n"
	"  sendmail [-a ACCOUNT] [-t] [-f FROM] [-F NAME] [-i|-oi] [RECIPIENT...]\n"
	"                                put the message on stdin into the outbox\n"
	"\n"
	"Exit status: 0 success, 1 the daemon reported a failure, 2 usage error,\n"
	"3 daemon not reachable.\n";

/* The socket: -s, else the config's control_socket. */
static char *socket_path(const char *opt_socket, const char *opt_config)
{
	if (opt_socket)
		return strdup(opt_socket);
	char *path = opt_config ? strdup(opt_config) : config_default_path();
	struct config *cfg = NULL;
	struct err err = { 0 };
	if (!path) {
		fputs("mailferryctl: no config file (set HOME or use -c or -s)\n", stderr);
		return NULL;
	}
	char *sock = NULL;
	if (config_load(path, &cfg, &err) == 0) {
		sock = strdup(cfg->general.control_socket);
		config_free(&cfg);
	} else {
		/* A config with an error still says where the daemon listens (it
		 * runs with the config it loaded before, and reload reports the
		 * error); one that cannot be read says nothing. */
		sock = config_control_socket(path, &err);
		if (!sock)
			fprintf(stderr, "mailferryctl: %s\n", err.msg);
	}
	free(path);
	return sock;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "mailferryctl: %s: socket path too long\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (e == ENOENT || e == ECONNREFUSED)
		fprintf(stderr, "mailferryctl: mailferryd is not running (nothing answers at %s)\n",
			path);
	else
		fprintf(stderr, "mailferryctl: %s: %s\n", path, strerror(e));
	return -1;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Prints the answer after its status line (on stderr when it reports a
 * failure); returns the status. */
static int relay_answer(int fd)
{
	char chunk[8192];
	struct buf head = { 0 };
	int status = -1;
	FILE *out = stdout;
	ssize_t n;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0 || (n < 0 && errno == EINTR)) {
		if (n < 0)
			continue;
		if (status >= 0) {
			fwrite(chunk, 1, (size_t)n, out);
			continue;
		}
		buf_append(&head, chunk, (size_t)n);
		char *nl = memchr(head.data, '\n', head.len);
		if (!nl)
			continue;
		status = atoi(head.data);
		if (status != EXIT_OK)
			out = stderr;
		fwrite(nl + 1, 1, head.len - (size_t)(nl + 1 - head.data), out);
	}
	buf_free(&head);
	if (status < 0) {
		fprintf(stderr, "mailferryctl: mailferryd closed the connection without an answer\n");
		return EXIT_UNREACHABLE;
	}
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' }, { "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },	    { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },	    { NULL, 0, NULL, 0 },
	};
	const char *opt_config = NULL, *opt_socket = NULL;
	bool json = false;
	int ch;
	/* "+": options after the command belong to it (sync --wait). */
	while ((ch = getopt_long(argc, argv, "+c:s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			opt_config = optarg;
			break;
		case 's':
			opt_socket = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return EXIT_OK;
		case 'V':
			printf("mailferryctl %s\n", MF_VERSION);
			return EXIT_OK;
		default:
			fputs(usage, stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	/* sendmail does not need the daemon: it writes the outbox itself. */
	if (strcmp(argv[optind], "sendmail") == 0)
		return ctl_sendmail(opt_config, argc - optind, argv + optind);
	char *path = socket_path(opt_socket, opt_config);
	if (!path)
		return EXIT_USAGE;
	int fd = connect_to(path);
	free(path);
	if (fd < 0)
		return EXIT_UNREACHABLE;
	struct buf req = { 0 };
	char **words = calloc((size_t)(argc - optind) + 2, sizeof(char *));
	int nwords = 0;
	if (json)
		words[nwords++] = "--json";
	for (int i = optind; i < argc; i++)
		words[nwords++] = argv[i];
	ctl_request_encode(&req, nwords, words);
	free(words);
	/* A daemon that refuses us may answer and hang up before reading the
	 * request: the write then fails, the answer is still there to read. */
	signal(SIGPIPE, SIG_IGN);
	send_all(fd, req.data, req.len);
	int rc = relay_answer(fd);
	buf_free(&req);
	close(fd);
	return rc;
}
