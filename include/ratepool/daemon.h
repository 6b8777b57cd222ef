/*
 * daemon.h - `ratepool run` (and `ratepool` without a command): the
 * long-running service beside the MQTT broker.
 */
#ifndef RATEPOOL_DAEMON_H
#define RATEPOOL_DAEMON_H

struct config;

/* Runs the daemon until SIGTERM or SIGINT, then shuts down within
 * cfg->shutdown_grace_ms. cfg is borrowed and outlives the call. Before
 * calling, main() has loaded cfg, opened the log (log_open with
 * cfg->log_level and cfg->log_file) and called http_global_init(); no
 * other thread is running. Returns 0 after a clean shutdown, or a negative
 * RP_E* code when it could not start or stopped on a fatal error (already
 * logged); main() exits 1 then. */
int daemon_run(const struct config *cfg);

#endif
