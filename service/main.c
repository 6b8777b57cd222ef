/* main.c - startup order, dispatch to one command, exit status. */
#include "ratepool/cli.h"
#include "ratepool/config.h"
#include "ratepool/daemon.h"
#include "ratepool/error.h"
#include "ratepool/http.h"
#include "ratepool/log.h"

#include <stdio.h>

int main(int argc, char **argv)
{
	struct cli_args args;
	struct config cfg;
	struct rp_err err;
	int quiet, rc;

	rc = cli_parse(argc, argv, &args, stderr);
	if(rc)
		return rc;
	if(args.command == CLI_HELP) {
		cli_usage(stdout);
		return CLI_EXIT_OK;
	}
	if(args.command == CLI_VERSION) {
		cli_version(stdout);
		return CLI_EXIT_OK;
	}

	rp_err_clear(&err);
	if(config_load(&cfg, args.config_path, NULL, &err)) {
		fprintf(stderr, "ratepool: %s\n", err.msg);
		config_free(&cfg);
		return args.command == CLI_HEALTH ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
	}
	if(args.log_level)
		log_level_parse(args.log_level, &cfg.log_level); /* checked by cli_parse */

	/* The daemon and fetch log where configured; the short checks log
	 * only warnings, to stderr, so a container healthcheck stays quiet
	 * and never writes into the daemon's log file. */
	quiet = args.command == CLI_HEALTH || args.command == CLI_CHECK_CONFIG ||
	        args.command == CLI_STORE_RESET;
	if(log_open(quiet && !args.log_level && cfg.log_level > LOG_LEVEL_WARN ? LOG_LEVEL_WARN
	                                                                       : cfg.log_level,
	            quiet ? NULL : cfg.log_file)) {
		fprintf(stderr, "ratepool: RATEPOOL_LOG_FILE: cannot open %s for writing\n", cfg.log_file);
		config_free(&cfg);
		return CLI_EXIT_FAIL;
	}

	switch(args.command) {
	case CLI_CHECK_CONFIG:
		rc = cli_check_config(&cfg, stdout, stderr);
		break;
	case CLI_HEALTH:
		rc = cli_health(&cfg, stdout, stderr);
		break;
	case CLI_STORE_RESET:
		rc = cli_store_reset(&cfg, stdout, stderr);
		break;
	case CLI_FETCH:
	case CLI_RUN:
	default:
		if(http_global_init()) {
			fprintf(stderr, "ratepool: cannot initialise the HTTP library\n");
			rc = CLI_EXIT_FAIL;
			break;
		}
		if(args.command == CLI_FETCH)
			rc = cli_fetch(&cfg, &args, stdout, stderr);
		else
			rc = daemon_run(&cfg) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
		http_global_cleanup();
		break;
	}
	config_free(&cfg);
	log_close();
	return rc;
}
