/* log.c - logfmt lines to stderr or a file, with secrets scrubbed. */
#include "ratepool/log.h"
#include "ratepool/error.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX    2048
#define LOG_SECRETS_MAX 32

enum log_level log__level = LOG_LEVEL_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file; /* NULL means stderr */
static char *log_path;
static char *secrets[LOG_SECRETS_MAX];
static int secret_count;

static const char *level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *name, enum log_level *out)
{
	if(!name)
		return RP_EINVAL;
	if(!strcasecmp(name, "error"))
		*out = LOG_LEVEL_ERROR;
	else if(!strcasecmp(name, "warn") || !strcasecmp(name, "warning"))
		*out = LOG_LEVEL_WARN;
	else if(!strcasecmp(name, "info"))
		*out = LOG_LEVEL_INFO;
	else if(!strcasecmp(name, "debug"))
		*out = LOG_LEVEL_DEBUG;
	else
		return RP_EINVAL;
	return 0;
}

static FILE *open_append(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	FILE *f;

	if(fd < 0)
		return NULL;
	f = fdopen(fd, "a");
	if(!f)
		close(fd);
	else
		setvbuf(f, NULL, _IOLBF, 0);
	return f;
}

int log_open(enum log_level level, const char *path)
{
	FILE *f = NULL;
	char *copy = NULL;

	if(path && *path) {
		f = open_append(path);
		copy = strdup(path);
		if(!f || !copy) {
			if(f)
				fclose(f);
			free(copy);
			return RP_EIO;
		}
	}
	pthread_mutex_lock(&log_lock);
	if(log_file)
		fclose(log_file);
	free(log_path);
	log_file = f;
	log_path = copy;
	log__level = level;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

int log_reopen(void)
{
	int rc = 0;
	FILE *f;

	pthread_mutex_lock(&log_lock);
	if(log_path) {
		f = open_append(log_path);
		if(f) {
			fclose(log_file);
			log_file = f;
		} else
			rc = RP_EIO;
	}
	pthread_mutex_unlock(&log_lock);
	return rc;
}

void log_close(void)
{
	int i;

	pthread_mutex_lock(&log_lock);
	if(log_file)
		fclose(log_file);
	log_file = NULL;
	free(log_path);
	log_path = NULL;
	for(i = 0; i < secret_count; i++) {
		free(secrets[i]);
		secrets[i] = NULL;
	}
	secret_count = 0;
	pthread_mutex_unlock(&log_lock);
}

int log_add_secret(const char *secret)
{
	int rc = 0;
	int i;

	if(!secret || strlen(secret) < 4)
		return 0;
	pthread_mutex_lock(&log_lock);
	for(i = 0; i < secret_count; i++)
		if(!strcmp(secrets[i], secret))
			goto out;
	if(secret_count == LOG_SECRETS_MAX) {
		rc = RP_EBUSY;
		goto out;
	}
	secrets[secret_count] = strdup(secret);
	if(!secrets[secret_count])
		rc = RP_ENOMEM;
	else
		secret_count++;
out:
	pthread_mutex_unlock(&log_lock);
	return rc;
}

void log_remove_secret(const char *secret)
{
	int i;

	if(!secret)
		return;
	pthread_mutex_lock(&log_lock);
	for(i = 0; i < secret_count; i++) {
		if(strcmp(secrets[i], secret))
			continue;
		free(secrets[i]);
		secrets[i] = secrets[secret_count - 1];
		secrets[secret_count - 1] = NULL;
		secret_count--;
		break;
	}
	pthread_mutex_unlock(&log_lock);
}

/* Length of the longest registered secret that starts at `in`, or 0.
 * The longest wins so that a secret extending another is masked whole,
 * not as "***" followed by its tail. Caller holds log_lock. */
static size_t secret_at(const char *in)
{
	size_t best = 0;
	int i;

	for(i = 0; i < secret_count; i++) {
		size_t n = strlen(secrets[i]);
		if(n > best && !strncmp(in, secrets[i], n))
			best = n;
	}
	return best;
}

/* Caller holds log_lock (or accepts a racy secret list at startup). */
static void scrub_locked(const char *in, char *out, unsigned long outsz)
{
	unsigned long o = 0;

	if(!outsz)
		return;
	while(*in && o + 1 < outsz) {
		size_t n = secret_at(in);
		if(n) {
			const char *mask = "***";
			while(*mask && o + 1 < outsz)
				out[o++] = *mask++;
			in += n;
			continue;
		}
		out[o++] = (*in == '\n' || *in == '\r' || (unsigned char)*in < 0x20) ? ' ' : *in;
		in++;
	}
	out[o] = '\0';
}

/* text was cut at the line limit: drop any tail that is the beginning of
 * a secret, since the rest of it (which would have made it match) is
 * gone. Caller holds log_lock. */
static void drop_cut_secret(char *text)
{
	size_t len = strlen(text);
	int i, cut;

	do {
		cut = 0;
		for(i = 0; i < secret_count && !cut; i++) {
			size_t n = strlen(secrets[i]);
			size_t k = n - 1 < len ? n - 1 : len;
			for(; k > 0; k--)
				if(!memcmp(text + len - k, secrets[i], k)) {
					len -= k;
					text[len] = '\0';
					cut = 1;
					break;
				}
		}
	} while(cut);
}

void log_scrub(const char *in, char *out, unsigned long outsz)
{
	pthread_mutex_lock(&log_lock);
	scrub_locked(in ? in : "", out, outsz);
	pthread_mutex_unlock(&log_lock);
}

void log_write(enum log_level level, const char *event, const char *fmt, ...)
{
	char body[LOG_LINE_MAX];
	char clean[LOG_LINE_MAX];
	char ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&log_lock);
	if(n >= (int)sizeof(body))
		drop_cut_secret(body);
	scrub_locked(body, clean, sizeof(clean));
	fprintf(log_file ? log_file : stderr, "ts=%s.%03ldZ level=%s event=%s%s%s\n", ts,
	        now.tv_nsec / 1000000L, level_names[level], event, *clean ? " " : "", clean);
	pthread_mutex_unlock(&log_lock);
}
