// An app that checks a WebSocket's Origin against the Host, as Jupyter
// (tornado's WebSocketHandler.check_origin: the Origin's host[:port] must
// equal the Host header) and Streamlit do. Its page opens a WebSocket to its
// own origin and shows "connected" once the app has answered over it, or
// "refused" when the socket closed without opening. The app refuses the
// handshake with a 403 when `new URL(origin).host !== Host`.

import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { WebSocketServer } from "ws";

export interface OriginHandshake {
	host: string;
	origin: string;
	accepted: boolean;
}

export interface OriginCheckApp {
	/** Where it listens, on 127.0.0.1. */
	readonly port: number;
	/** Every WebSocket handshake it received, in order. */
	handshakes(): OriginHandshake[];
	close(): Promise<void>;
}

const page = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Origin-checking app</title><link rel="icon" href="data:,"></head>
<body>
<h1>An app that checks Origin against Host</h1>
<p>WebSocket: <span id="status">connecting</span></p>
<p>Reply: <span id="reply"></span></p>
<script>
const status = document.getElementById("status");
const reply = document.getElementById("reply");
const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
let opened = false;
socket.addEventListener("open", () => {
	opened = true;
	socket.send("hello from " + location.host);
});
socket.addEventListener("message", (event) => {
	reply.textContent = event.data;
	status.textContent = "connected";
});
socket.addEventListener("close", (event) => {
	status.textContent = opened ? "closed " + event.code : "refused";
});
</script>
</body>
</html>
`;

function refuse(socket: Socket, body: string): void {
	socket.end(
		`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
	);
}

/** tornado's check_origin, and Streamlit's: the Origin's host and port must be the request's Host. */
function sameOrigin(req: IncomingMessage): boolean {
	const origin = req.headers.origin;
	if (origin === undefined) return false;
	try {
		return new URL(origin).host === req.headers.host;
	} catch {
		return false;
	}
}

export async function startOriginCheckApp(): Promise<OriginCheckApp> {
	const handshakes: OriginHandshake[] = [];
	const server = createServer((req, res) => {
		if (req.url === "/" || req.url === "/index.html") {
			res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
			res.end(page);
			return;
		}
		res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
	});
	const wss = new WebSocketServer({ noServer: true });
	wss.on("connection", (socket, req) => {
		socket.on("message", (data) => socket.send(`echo: ${data.toString()} (Host ${req.headers.host})`));
	});
	server.on("upgrade", (req: IncomingMessage, socket: Socket, head: Buffer) => {
		socket.on("error", () => socket.destroy());
		const accepted = req.url === "/ws" && sameOrigin(req);
		handshakes.push({ host: req.headers.host ?? "", origin: req.headers.origin ?? "", accepted });
		if (!accepted) {
			refuse(socket, `Cross origin websockets not allowed (Origin ${req.headers.origin}, Host ${req.headers.host})\n`);
			return;
		}
		wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req));
	});
	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => resolve());
	});
	const port = (server.address() as AddressInfo).port;
	return {
		port,
		handshakes: () => [...handshakes],
		async close() {
			for (const client of wss.clients) client.terminate();
			wss.close();
			server.closeAllConnections();
			await new Promise<void>((resolve) => server.close(() => resolve()));
		},
	};
}
