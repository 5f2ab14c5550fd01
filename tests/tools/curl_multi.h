/*
 * curl_multi.h - the test agents' libcurl multi loop (curl_budget_agent, curl_multi_agent).
 */
#ifndef TOKSHIM_CURL_MULTI_H
#define TOKSHIM_CURL_MULTI_H

#include <curl/curl.h>

/* Runs every transfer added to m to its end, handing each one that finished to done. */
static inline void agent_multi_run(CURLM *m, void (*done)(const CURLMsg *msg, void *arg),
				   void *arg)
{
	CURLMsg *msg;
	int running = 1, left;

	while (running) {
		if (curl_multi_perform(m, &running) != CURLM_OK)
			break;
		if (running)
			curl_multi_poll(m, NULL, 0, 1000, NULL);
		for (msg = curl_multi_info_read(m, &left); msg != NULL;
		     msg = curl_multi_info_read(m, &left)) {
			if (msg->msg == CURLMSG_DONE)
				done(msg, arg);
		}
	}
}

#endif
