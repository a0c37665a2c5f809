// A Vite dev server as a sandbox's app, set up as a user behind E2B's edge
// sets it up: `server.allowedHosts` names the sandbox domain, and the HMR
// client connects back through the page's own origin (`server.ws.clientPort`,
// Vite 8's name for the deprecated `server.hmr.clientPort`). With clientPort
// set, Vite's client does not fall back to a direct connection to the dev
// server, so an HMR socket that connects has come through the edge.
//
// It serves a copy of ./vite-app/ from a temporary directory, so that a test
// can change message.js and watch the page take it by HMR.

import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Plugin } from "vite";

export interface ViteAppOptions {
	/** The port the browser reaches the page on: the Worker's. */
	clientPort: number;
	allowedHosts: string[];
}

export interface ViteApp {
	/** Where the dev server listens, on 127.0.0.1. */
	readonly port: number;
	/** The Host of every HMR WebSocket handshake Vite received, in order. */
	hmrHandshakeHosts(): string[];
	/** Rewrites message.js in the served copy. */
	setMessage(text: string): void;
	close(): Promise<void>;
}

const source = new URL("./vite-app/", import.meta.url).pathname;

export async function startViteApp(options: ViteAppOptions): Promise<ViteApp> {
	const root = mkdtempSync(join(tmpdir(), "vite-app-"));
	cpSync(source, root, { recursive: true });
	const handshakeHosts: string[] = [];
	// Answers the page's sandbox:ping over the HMR socket, so the page can tell a working socket.
	const roundTrip: Plugin = {
		name: "sandbox-round-trip",
		configureServer(server) {
			server.ws.on("sandbox:ping", (_data, client) => client.send("sandbox:pong", {}));
			server.httpServer?.on("upgrade", (req) => {
				if (req.headers["sec-websocket-protocol"] === "vite-hmr") handshakeHosts.push(req.headers.host ?? "");
			});
		},
	};
	const server = await createServer({
		configFile: false,
		root,
		logLevel: "silent",
		clearScreen: false,
		plugins: [roundTrip],
		optimizeDeps: { noDiscovery: true, include: [] },
		server: {
			host: "127.0.0.1",
			port: 0,
			strictPort: true,
			allowedHosts: options.allowedHosts,
			ws: { clientPort: options.clientPort },
		},
	});
	let address: AddressInfo | string | null | undefined;
	try {
		await server.listen();
		address = server.httpServer?.address();
		if (address === null || address === undefined || typeof address === "string") {
			throw new Error(`Vite's dev server is not listening on a TCP port (${address})`);
		}
	} catch (error) {
		await server.close();
		rmSync(root, { recursive: true, force: true });
		throw error;
	}
	const port = address.port;
	return {
		port,
		hmrHandshakeHosts: () => [...handshakeHosts],
		setMessage(text) {
			writeFileSync(join(root, "message.js"), `export const message = ${JSON.stringify(text)};\n`);
		},
		async close() {
			await server.close();
			rmSync(root, { recursive: true, force: true });
		},
	};
}
