// A moleculer 0.15 broker for the gateway's interop test (server/tests/cluster.rs).
//
//   node broker.js <transporter-url> <node-id>
//
// Serves the actions `interop.hello` and `interop.fail`, waits until the gateway's service
// `websocket` is known, prints `@@ {"ready":true}`, then runs one JSON command per stdin line
// and prints one `@@ <json>` reply line for each:
//   {"broadcast": {"event": "websocket.send", "params": {...}}}  -> {"ok": true}
//   {"call": {"action": "websocket.clients", "params": {}}}      -> {"result": ...} | {"error": {...}}
//   {"pace": {"path": "/ws/x", "from": 1, "count": 500, "rate": 100}}
//       broadcasts `websocket.send` with data from, from+1, ... at `rate` per second, paced
//       from the start (no drift); replies {"sent": count} when the last one went out.
// Moleculer's own log goes to stderr. The broker stops when stdin closes.
"use strict";

const readline = require("readline");
const { ServiceBroker, Errors } = require("moleculer");

const [transporter, nodeID] = process.argv.slice(2);
if (!transporter || !nodeID) {
	console.error("usage: node broker.js <transporter-url> <node-id>");
	process.exit(2);
}

const reply = obj => process.stdout.write("@@ " + JSON.stringify(obj) + "\n");

const broker = new ServiceBroker({
	nodeID,
	transporter,
	heartbeatInterval: 1,
	heartbeatTimeout: 5,
	logger: {
		type: "Console",
		options: { level: process.env.MOLECULER_LOG_LEVEL || "warn", colors: false },
	},
});
// Keep stdout for the replies: route the console logger to stderr.
for (const level of ["log", "info", "warn", "error", "debug", "trace"]) {
	console[level] = (...args) => process.stderr.write(args.join(" ") + "\n");
}

broker.createService({
	name: "interop",
	actions: {
		hello(ctx) {
			return { hello: ctx.params.name, from: broker.nodeID };
		},
		fail() {
			throw new Errors.ValidationError("interop says no", "INTEROP_NO", { why: "test" });
		},
	},
});

async function main() {
	await broker.start();
	await broker.waitForServices(["websocket"], 20000);
	reply({ ready: true });
	const lines = readline.createInterface({ input: process.stdin });
	for await (const line of lines) {
		if (!line.trim()) continue;
		try {
			const cmd = JSON.parse(line);
			if (cmd.broadcast) {
				await broker.broadcast(cmd.broadcast.event, cmd.broadcast.params);
				reply({ ok: true });
			} else if (cmd.pace) {
				const { path, from, count, rate } = cmd.pace;
				const start = Date.now();
				for (let i = 0; i < count; i++) {
					const due = start + (i * 1000) / rate - Date.now();
					if (due > 0) await new Promise(r => setTimeout(r, due));
					await broker.broadcast("websocket.send", { path, data: from + i });
				}
				reply({ sent: count });
			} else if (cmd.call) {
				const result = await broker.call(cmd.call.action, cmd.call.params || {});
				reply({ result: result === undefined ? null : result });
			} else {
				reply({ error: { message: "unknown command" } });
			}
		} catch (err) {
			reply({ error: { name: err.name, message: err.message, code: err.code, type: err.type } });
		}
	}
	await broker.stop();
}

main().catch(err => {
	process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
	process.exit(1);
});
