import type { Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface ManagedServer {
	readonly port: number;
	/** Stops listening and destroys every socket, upgraded and idle ones included. */
	close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 and tracks sockets itself, because server.close() waits
 * for open connections and closeAllConnections() does not see sockets that were
 * handed off by an upgrade (WebSockets) — either would keep tests from exiting.
 */
export async function listen(server: Server, port: number): Promise<ManagedServer> {
	const sockets = new Set<Socket>();
	server.on("connection", (socket: Socket) => {
		sockets.add(socket);
		socket.once("close", () => sockets.delete(socket));
	});
	// Long uploads and long-held requests (hang faults, SSE) are legitimate here.
	server.requestTimeout = 0;
	server.headersTimeout = 60_000;

	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(port, "127.0.0.1", () => {
			server.off("error", reject);
			resolve();
		});
	});
	const boundPort = (server.address() as AddressInfo).port;

	let closing: Promise<void> | undefined;
	return {
		port: boundPort,
		close() {
			closing ??= new Promise<void>((resolve) => {
				server.close(() => resolve());
				for (const socket of sockets) socket.destroy();
			});
			return closing;
		},
	};
}
