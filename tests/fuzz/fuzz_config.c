/*
 * fuzz_config.c - config_load on hostile JSON config files.
 *
 * config_load takes a path, so each input is written to a file on tmpfs
 * (/dev/shm, or $TMPDIR when that is missing) and loaded with an empty
 * environment. `*_file` keys in the input may name other files; the
 * harness runs with stdin from /dev/null so that none of them blocks.
 * Seeds: tests/data/config/.
 */
#include "fuzz.h"
#include "ratepool/config.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static char path[256];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir =
	        access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");

	fuzz_quiet_logs();
	snprintf(path, sizeof(path), "%s/ratepool-fuzz-config-%ld.json", dir, (long)getpid());
	return 0;
}

static int write_all(int fd, const uint8_t *data, size_t size)
{
	while(size) {
		ssize_t n = write(fd, data, size);
		if(n <= 0)
			return -1;
		data += n;
		size -= (size_t)n;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *const env[] = {NULL};
	struct config cfg;
	struct rp_err err;
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if(fd < 0)
		abort(); /* a harness problem, not a finding: stop loudly */
	if(write_all(fd, data, size))
		abort();
	close(fd);
	rp_err_clear(&err);
	rc = config_load(&cfg, path, env, &err);
	if(rc != 0 && !err.msg[0])
		abort(); /* refused without saying why */
	if(rc == 0 && (!cfg.mqtt_url || !cfg.topic_prefix || !cfg.store))
		abort(); /* accepted, but a required setting has no value */
	config_free(&cfg);
	/* Secrets read from the input accumulate in the log's scrub list
	 * (32 places); forget them between inputs. */
	log_close();
	fuzz_quiet_logs();
	unlink(path);
	return 0;
}
