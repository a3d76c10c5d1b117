#include "imap/date.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Days since the epoch of a proleptic Gregorian date: no timegm, no TZ. */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

bool imap_date_parse(const char *s, time_t *out)
{
	char mon[4], sign;
	int day, year, hh, mm, ss, zone, used = 0;
	if (sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %c%4d%n", &day, mon, &year, &hh, &mm, &ss, &sign,
		   &zone, &used) != 8 ||
	    s[used] != '\0' || (sign != '+' && sign != '-'))
		return false;
	int m = -1;
	for (int i = 0; i < 12; i++)
		if (strcasecmp(mon, months[i]) == 0)
			m = i;
	if (m < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || zone % 100 > 59)
		return false;
	long long t = days_from_civil(year, (unsigned)m + 1, (unsigned)day) * 86400 +
		      hh * 3600 + mm * 60 + ss;
	long long offset = (zone / 100) * 3600 + (zone % 100) * 60;
	*out = (time_t)(sign == '+' ? t - offset : t + offset);
	return true;
}

void imap_date_format(struct buf *b, time_t t)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	buf_printf(b, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday, months[tm.tm_mon],
		   tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
