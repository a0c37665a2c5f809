// `npm run catalog-bridge -- --redis <url> --edge <url>`: mirrors E2B's Redis
// sandbox catalog into the edge's catalog API until SIGINT or SIGTERM.
// SIGUSR2 confirms the deletes that the mass-delete guard holds.
// Exit codes: 0 stopped by a signal or --help, 1 unexpected failure,
// 2 bad command line or environment, 3 Redis keyspace notifications off.

import { type BridgeHandle, NotificationsOffError, startBridge } from "./bridge.ts";
import { ConfigError, parseCommandLine, USAGE } from "./config.ts";
import { consoleLog } from "./log.ts";

function fail(code: number, message: string): never {
	console.error(`catalog-bridge: ${message}`);
	process.exit(code);
}

async function main(): Promise<void> {
	let parsed: ReturnType<typeof parseCommandLine>;
	try {
		parsed = parseCommandLine(process.argv.slice(2), process.env);
	} catch (error) {
		if (error instanceof ConfigError) fail(2, `${error.message}\nRun with --help for usage.`);
		throw error;
	}
	if (parsed.help) {
		console.log(USAGE);
		return;
	}
	const { config } = parsed;

	const startup = new AbortController();
	let handle: BridgeHandle | undefined;
	let stopping = false;
	const onSignal = (signal: NodeJS.Signals) => {
		if (stopping) {
			consoleLog(`${signal} again: exiting now`);
			process.exit(1);
		}
		stopping = true;
		consoleLog(`${signal}: stopping`);
		startup.abort();
		// Before startBridge returns there is nothing to flush; it closes its own connections.
		void handle?.close().then(() => process.exit(0));
	};
	process.on("SIGINT", onSignal);
	process.on("SIGTERM", onSignal);
	// The operator's word that a mass delete is real (see --mass-delete-hold).
	process.on("SIGUSR2", () => {
		if (handle === undefined) consoleLog("SIGUSR2: not started yet, so no deletes are held");
		else handle.confirmMassDelete();
	});

	try {
		handle = await startBridge({
			redisUrl: config.redisUrl,
			edgeOrigin: config.edgeOrigin,
			catalogSecret: config.catalogSecret,
			reconcileIntervalMs: config.reconcileIntervalMs,
			defaultTtlSeconds: config.defaultTtlSeconds,
			scanCount: config.scanCount,
			notifications: config.notifications,
			stateFile: config.stateFile,
			massDelete: config.massDelete,
			confirmHint: `SIGUSR2 (kill -USR2 ${process.pid}, or systemctl kill -s USR2 <unit>)`,
			signal: startup.signal,
		});
	} catch (error) {
		if (stopping) process.exit(0);
		if (error instanceof NotificationsOffError) fail(3, error.message);
		throw error;
	}
	if (stopping) {
		await handle.close();
		process.exit(0);
	}
}

main().catch((error: unknown) => {
	fail(1, `failed: ${error instanceof Error ? error.message : String(error)}`);
});
