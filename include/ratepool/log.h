/*
 * log.h - one line per event, logfmt style, secrets scrubbed.
 *
 * A line looks like
 *   ts=2026-11-21T16:00:00Z level=info event=fetch_done provider=octopus slots=48
 * Callers give the event name and the rest as printf-style `key=value`
 * pairs; a value that may hold spaces should be quoted by the caller
 * (`msg="%s"`). Newlines and other control characters in the formatted
 * text are replaced so that one event is always one line. Every string
 * registered with log_add_secret() is replaced by `***` before the line is
 * written, so a token that slips into an upstream error message never
 * reaches the log.
 *
 * The level check happens in the macro, before any argument is formatted.
 * Thread-safe: lines from several threads never interleave.
 */
#ifndef RATEPOOL_LOG_H
#define RATEPOOL_LOG_H

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

extern enum log_level log__level;

/* Parses "error", "warn"/"warning", "info", "debug" (case-insensitive).
 * Returns 0, or RP_EINVAL for anything else (out untouched). */
int log_level_parse(const char *name, enum log_level *out);

/* Sets the level and the destination: path NULL or "" means stderr,
 * otherwise the file is opened for append (mode 0640). Returns 0 or
 * RP_EIO. Safe to call again. */
int log_open(enum log_level level, const char *path);

/* Reopens the log file (after logrotate moved it; SIGHUP). No-op for
 * stderr. Returns 0 or RP_EIO (the old file stays in use then). */
int log_reopen(void);

/* Closes the file and forgets the secrets. */
void log_close(void);

/* Registers a secret to scrub from every later line. Strings shorter
 * than 4 characters are ignored (they would scrub ordinary words). The
 * string is copied. At most 32 secrets; returns 0 or RP_EBUSY/RP_ENOMEM. */
int log_add_secret(const char *secret);

/* Forgets a secret registered before (e.g. a token that was replaced by a
 * newer one), so that short-lived tokens do not fill the 32 places. No-op
 * when it is not registered. */
void log_remove_secret(const char *secret);

/* Writes one line; use the macros below, which check the level first. */
void log_write(enum log_level level, const char *event, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Copies `in` to `out` (size `outsz`) with every registered secret
 * replaced by `***`. Used by log_write, and by code that builds text bound
 * for MQTT from an upstream message. Always NUL-terminates. */
void log_scrub(const char *in, char *out, unsigned long outsz);

#define log_at(lvl, event, ...)                                                                              \
	do {                                                                                                 \
		if((lvl) <= log__level)                                                                      \
			log_write((lvl), (event), __VA_ARGS__);                                              \
	} while(0)
#define log_error(event, ...) log_at(LOG_LEVEL_ERROR, event, __VA_ARGS__)
#define log_warn(event, ...)  log_at(LOG_LEVEL_WARN, event, __VA_ARGS__)
#define log_info(event, ...)  log_at(LOG_LEVEL_INFO, event, __VA_ARGS__)
#define log_debug(event, ...) log_at(LOG_LEVEL_DEBUG, event, __VA_ARGS__)

#endif
