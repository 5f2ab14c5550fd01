// h2agent.js - a Node.js agent on node's own http2 module (http2.connect, TLS with ALPN h2),
// its calls made as streams of one session per origin, at once.
//
//     node h2agent.js SPEC.json
//
// SPEC is a JSON object:
//   resolve   host names this agent maps to 127.0.0.1 (the lookup option of http2.connect;
//             the session still sends the real :authority and SNI)
//   calls     [{"origin": "https://api.openai.com:PORT", "path", "headers", "body"}]
// The CA comes from NODE_EXTRA_CA_CERTS. It prints "node_options " and NODE_OPTIONS as it sees
// it (JSON, null when unset), then for each call, in the order given, "== ORIGIN PATH STATUS"
// and the response body; exit status 0, or 3 on an error.
'use strict';
const dns = require('dns');
const fs = require('fs');
const http2 = require('http2');

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const resolve = new Set(spec.resolve || []);
const lookup = (host, opts, cb) => dns.lookup(resolve.has(host) ? '127.0.0.1' : host, opts, cb);
const sessions = new Map();
const opts = process.env.NODE_OPTIONS;

process.stdout.write('node_options ' + JSON.stringify(opts === undefined ? null : opts) + '\n');

function session(origin) {
	if (!sessions.has(origin))
		sessions.set(origin, http2.connect(origin, { lookup }));
	return sessions.get(origin);
}

function call(c) {
	return new Promise((resolve, reject) => {
		const req = session(c.origin).request({ ':method': 'POST', ':path': c.path,
			...c.headers });
		let status = 0, body = '';
		req.setEncoding('utf8');
		req.on('response', (h) => { status = h[':status']; });
		req.on('data', (d) => { body += d; });
		req.on('end', () => resolve('== ' + c.origin + ' ' + c.path + ' ' + status + '\n' +
			body + '\n'));
		req.on('error', reject);
		req.end(c.body);
	});
}

Promise.all(spec.calls.map(call)).then((out) => {
	process.stdout.write(out.join(''));
	for (const s of sessions.values())
		s.close();
}).catch((e) => {
	process.stdout.write('error ' + e.message + '\n');
	process.exitCode = 3;
	for (const s of sessions.values())
		s.destroy();
});
