/*
 * fuzz_request.c - request_parse, request_reply_topic_ok and
 * request_reply_json on hostile MQTT messages.
 *
 * Input: one flag byte, then the topic up to the first '\n', then the
 * payload (the rest, not NUL-terminated). Flag bits: 0x01 the message
 * carried an MQTT 5 Response Topic; 0x02 use the default limits (else a
 * small range limit and a custom provider list); 0x04 a prefix with two
 * levels. tests/fuzz/run.sh turns tests/data/requests/ into seeds
 * of this form.
 */
#include "fuzz.h"
#include "ratepool/request.h"
#include "ratepool/slot.h"

#include <jansson.h>
#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fuzz_quiet_logs();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const providers[] = {"octopus", "aemo", NULL};
	const int64_t now = INT64_C(1795264496); /* 2026-11-21T12:34:56Z, the fixtures' now */
	struct request_limits lim = {.max_range_s = 86400, .providers = providers, .discovery_prefix = "ha"};
	struct store_range missing[2] = {{now, now + 1800}, {now + 3600, now + 7200}};
	struct slot_list slots;
	struct request req;
	struct rp_err err;
	const char *prefix;
	char *topic = NULL, *json = NULL;
	const uint8_t *nl;
	size_t tlen, len = 0;
	uint8_t flags;
	int rc;

	if(size < 1)
		return 0;
	flags = data[0];
	data++;
	size--;
	nl = memchr(data, '\n', size);
	tlen = nl ? (size_t)(nl - data) : size;
	topic = fuzz_strndup(data, tlen);
	if(!topic)
		return 0;
	data += nl ? tlen + 1 : tlen;
	size -= nl ? tlen + 1 : tlen;
	prefix = (flags & 0x04) ? "home/ratepool" : "ratepool";

	rp_err_clear(&err);
	rc = request_parse(prefix, topic, size ? data : NULL, size, flags & 0x01, now,
	                   (flags & 0x02) ? NULL : &lim, &req, &err);
	if(rc == 0 && (req.refusal != REQUEST_OK || !req.ref_ok || req.from >= req.to))
		abort(); /* accepted, but not a usable request */
	if(rc != 0 && req.refusal == REQUEST_OK)
		abort(); /* refused without a reason */
	if(req.reply == REQUEST_REPLY_TO &&
	   !request_reply_topic_ok(prefix, (flags & 0x02) ? NULL : "ha", req.reply_to, strlen(req.reply_to),
	                           REQUEST_REPLY_TO_MAX))
		abort(); /* a reply_to that the checker itself refuses */
	request_reply_topic_ok(prefix, "homeassistant", topic, tlen, 65535);

	/* The reply to it, with a few hostile slots. */
	slot_list_init(&slots);
	slot_list_push(&slots, now, now + 1800, 0.2458575, NAN);
	slot_list_push(&slots, now + 1800, now + 3600, -1e-7, 1e300);
	slot_list_push(&slots, now + 3600, now + 5400, NAN, INFINITY);
	if(rc)
		rc = request_reply_json(&req, REQUEST_STATUS_ERROR, NULL, NULL, "", 0, NULL, 0, &err, &json,
		                        &len);
	else
		rc = request_reply_json(&req, REQUEST_STATUS_PARTIAL, &slots, NULL, NULL, now, missing, 2,
		                        NULL, &json, &len);
	if(rc == 0) {
		json_t *parsed;
		if(!json || strlen(json) != len)
			abort(); /* the reply must be one NUL-free string */
		parsed = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
		if(!json_is_object(parsed))
			abort(); /* ... and valid JSON, whatever the request held */
		json_decref(parsed);
	}
	free(json);
	slot_list_free(&slots);
	free(topic);
	return 0;
}
