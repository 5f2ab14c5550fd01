// agent.js - a small Node.js "agent" calling LLM APIs with the real npm SDKs (`openai`,
// `@anthropic-ai/sdk`), which run on Node's own TLS (OpenSSL linked into the node binary).
//
//     node agent.js SPEC.json
//
// SPEC is a JSON object:
//   resolve   host names this agent maps to 127.0.0.1 (dns.lookup is wrapped; the SDKs are
//             untouched and still send the real Host and SNI)
//   openai    base URL for the openai SDK (e.g. https://api.openai.com:PORT/v1)
//   anthropic base URL for the Anthropic SDK (e.g. https://api.anthropic.com:PORT)
//   calls     [{"sdk": "openai", "model", "messages", "max_tokens", "stream"},
//              {"sdk": "anthropic", "model", "messages", "max_tokens", "stream"}]
//   headers   extra request headers for both SDKs (defaultHeaders)
//   busy_pool crypto.pbkdf2 iterations to run on node's thread pool while the calls are made
//             (with UV_THREADPOOL_SIZE=1, what node queues there waits behind them)
//   exit      true: process.exit(0) as soon as the last call's reply is printed, with
//             whatever node still had to do (key log writes, socket closes) left undone
// The CA comes from NODE_EXTRA_CA_CERTS, as an agent would be configured.
//
// It first prints "node_options " and NODE_OPTIONS as it sees it (JSON, null when unset),
// then for each call "== SDK MODEL" and what the SDK handed over: the reply text and the
// usage it reports (a stream: the deltas joined). Exit status 0, or 3 on an error.
'use strict';
const dns = require('dns');
const fs = require('fs');
const path = require('path');

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const resolve = new Set(spec.resolve || []);
const lookup = dns.lookup;
dns.lookup = function (host, opts, cb) {
	return lookup.call(this, resolve.has(host) ? '127.0.0.1' : host, opts, cb);
};

const modules = process.env.TOKSHIM_NODE_MODULES || path.join(__dirname, 'node_modules');
const OpenAI = require(path.join(modules, 'openai')).default;
const Anthropic = require(path.join(modules, '@anthropic-ai/sdk')).default;

async function openaiCall(c) {
	const client = new OpenAI({ apiKey: 'sk-test-node', baseURL: spec.openai, maxRetries: 0,
		defaultHeaders: spec.headers });
	const req = { model: c.model, messages: c.messages, max_tokens: c.max_tokens };
	if (!c.stream) {
		const r = await client.chat.completions.create(req);
		return r.choices[0].message.content + '\nusage ' + JSON.stringify(r.usage);
	}
	const s = await client.chat.completions.create(
		{ ...req, stream: true, stream_options: { include_usage: true } });
	let text = '', usage = null;
	for await (const chunk of s) {
		if (chunk.choices.length > 0 && chunk.choices[0].delta.content)
			text += chunk.choices[0].delta.content;
		if (chunk.usage)
			usage = chunk.usage;
	}
	return text + '\nusage ' + JSON.stringify(usage);
}

async function anthropicCall(c) {
	const client = new Anthropic({ apiKey: 'sk-ant-test-node', baseURL: spec.anthropic,
		maxRetries: 0, defaultHeaders: spec.headers });
	const req = { model: c.model, messages: c.messages, max_tokens: c.max_tokens };
	if (!c.stream) {
		const r = await client.messages.create(req);
		return r.content[0].text + '\nusage ' + JSON.stringify(r.usage);
	}
	const s = client.messages.stream(req);
	let text = '';
	s.on('text', (t) => { text += t; });
	const m = await s.finalMessage();
	return text + '\nusage ' + JSON.stringify(m.usage);
}

async function main() {
	const opts = process.env.NODE_OPTIONS;
	process.stdout.write('node_options ' + JSON.stringify(opts === undefined ? null : opts) + '\n');
	if (spec.busy_pool)
		require('crypto').pbkdf2('pool', 'busy', spec.busy_pool, 64, 'sha512', () => {});
	for (const c of spec.calls) {
		const out = c.sdk === 'openai' ? await openaiCall(c) : await anthropicCall(c);
		process.stdout.write('== ' + c.sdk + ' ' + c.model + '\n' + out + '\n');
	}
	if (spec.exit)
		process.exit(0);
}

main().catch((e) => {
	process.stdout.write('error ' + e.message + '\n');
	process.exitCode = 3;
});
