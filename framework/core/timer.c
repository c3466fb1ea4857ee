/* core/timer: the monotonic clock, the wall clock of timestamps and the process's peak memory. */
#include "core/core.h"

#include <sys/resource.h>
#include <time.h>

double xa_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t xa_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024u; /* Linux reports KiB */
}

double xa_time_wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

char *xa_time_format(double t, char *buf, size_t n) {
    time_t s = (time_t)t;
    struct tm tm;
    if (!n) return buf;
    if (!gmtime_r(&s, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm)) buf[0] = '\0';
    return buf;
}
