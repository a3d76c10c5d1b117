#include "maildir/name.h"

#include "core/xalloc.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The escaped host part is cut here: with the fixed part (at most 63 bytes)
 * the unique name stays below MAILDIR_UNIQUE_MAX. */
#define HOST_PART_MAX 64

static unsigned long unique_counter;

/* Where the info of name[0..len) starts (at its separator), or len when
 * none. Whichever separator comes first wins, so a base holds neither and a
 * rebuilt name always parses back to the same base. */
static size_t info_start(const char *name, size_t len)
{
	const char *colon = memchr(name, ':', len);
	const char *semi = strstr(name, ";2,");
	size_t at = colon ? (size_t)(colon - name) : len;
	if (semi && (size_t)(semi - name) < at)
		at = (size_t)(semi - name);
	return at;
}

int maildir_name_parse(const char *name, struct maildir_name *out)
{
	size_t len = strlen(name);
	if (len == 0 || len > NAME_MAX || name[0] == '.' || memchr(name, '/', len))
		return -EINVAL;
	size_t sep = info_start(name, len);
	if (sep == 0)
		return -EINVAL;
	out->base = name;
	out->base_len = sep;
	out->flags = 0;
	out->unknown[0] = '\0';
	out->has_info = sep < len;
	if (!out->has_info)
		return 0;
	if (len - sep < 3 || name[sep + 1] != '2' || name[sep + 2] != ',')
		return -EINVAL;
	return flags_from_maildir(name + sep + 3, len - sep - 3, &out->flags, out->unknown);
}

bool maildir_flags_in_new(unsigned flags)
{
	return !(flags & FLAG_SEEN);
}

char *maildir_name_build(const char *base, size_t base_len, unsigned flags, const char *unknown,
			 bool in_new)
{
	char info[FLAGS_INFO_MAX];
	size_t n = flags_to_maildir(flags, unknown, info);
	if (in_new && n == 0)
		return xstrndup(base, base_len);
	return xasprintf("%.*s:2,%s", (int)base_len, base, info);
}

/* Appends the host name, escaped, to out[0..HOST_PART_MAX]. */
static void host_part(char out[HOST_PART_MAX + 1])
{
	char host[256];
	if (gethostname(host, sizeof(host)) != 0 || !host[0])
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_';
		size_t need = plain ? 1 : 4;
		if (n + need > HOST_PART_MAX)
			break;
		if (plain)
			out[n++] = (char)*p;
		else
			n += (size_t)snprintf(out + n, 5, "\\%03o", *p);
	}
	out[n] = '\0';
}

void maildir_name_unique(char out[MAILDIR_UNIQUE_MAX])
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	unsigned long q = __atomic_fetch_add(&unique_counter, 1, __ATOMIC_RELAXED);
	char host[HOST_PART_MAX + 1];
	host_part(host);
	int n = snprintf(out, MAILDIR_UNIQUE_MAX, "%lld.M%06ldP%ldQ%lu.%s", (long long)now.tv_sec,
			 now.tv_nsec / 1000, (long)getpid(), q, host);
	BUG_ON(n < 0 || n >= MAILDIR_UNIQUE_MAX);
}

bool maildir_name_ours(const char *name, long *pid)
{
	long long sec;
	long usec;
	unsigned long q;
	int end = 0;
	if (sscanf(name, "%lld.M%6ldP%ldQ%lu.%n", &sec, &usec, pid, &q, &end) != 4 || end == 0)
		return false;
	char host[HOST_PART_MAX + 1];
	host_part(host);
	return strcmp(name + end, host) == 0;
}
