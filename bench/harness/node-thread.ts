// The bench's node, in a worker thread of its own so that the load
// generator's work on the main thread never delays its answers. Both the
// proxy and the pass-through forward to it; it answers at once, so that the
// Workers' own cost is as large a share of each request as it can be.
//
//   GET  /bench, or any other path   200 {"ok":true}
//   GET  /wait?ms=N                  the same, N ms later (the floor of a wake)
//   GET  /download?bytes=N           N bytes, with a Content-Length
//   POST /upload                     reads the body, answers {"bytes": <bytes read>}
//   WebSocket /ws                    echoes every message
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { parentPort } from "node:worker_threads";
import { WebSocketServer } from "ws";

const small = Buffer.from('{"ok":true}');
const chunk = Buffer.alloc(256 * 1024, 0x61);
const counts = { requests: 0, uploadedBytes: 0, downloadedBytes: 0, echoes: 0 };

function answerSmall(res: ServerResponse): void {
	res.writeHead(200, { "content-type": "application/json", "content-length": small.length });
	res.end(small);
}

function download(res: ServerResponse, bytes: number): void {
	res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes });
	let left = bytes;
	const write = () => {
		while (left > 0) {
			const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
			left -= piece.length;
			counts.downloadedBytes += piece.length;
			if (!res.write(piece)) return void res.once("drain", write);
		}
		res.end();
	};
	write();
}

function handle(req: IncomingMessage, res: ServerResponse): void {
	counts.requests += 1;
	const url = new URL(req.url ?? "/", "http://node");
	let read = 0;
	req.on("data", (data: Buffer) => {
		read += data.length;
	});
	// Answers once the whole body has arrived, so that an upload is timed to its end.
	req.on("end", () => {
		if (url.pathname === "/upload") {
			counts.uploadedBytes += read;
			const body = Buffer.from(JSON.stringify({ bytes: read }));
			res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
			res.end(body);
			return;
		}
		if (url.pathname === "/download") return download(res, Number(url.searchParams.get("bytes") ?? 0));
		if (url.pathname === "/wait") {
			setTimeout(() => answerSmall(res), Number(url.searchParams.get("ms") ?? 0));
			return;
		}
		answerSmall(res);
	});
}

const server = createServer({ keepAliveTimeout: 60_000 }, handle);
const sockets = new WebSocketServer({ server, path: "/ws" });
sockets.on("connection", (socket) => {
	socket.on("message", (data, isBinary) => {
		counts.echoes += 1;
		socket.send(data, { binary: isBinary });
	});
});
server.listen(0, "127.0.0.1", () => {
	parentPort?.postMessage({ port: (server.address() as AddressInfo).port });
});
parentPort?.on("message", (message: { type: "counts" | "close" }) => {
	if (message.type === "counts") parentPort?.postMessage({ counts: { ...counts } });
	if (message.type === "close") {
		for (const client of sockets.clients) client.terminate();
		server.closeAllConnections();
		server.close(() => parentPort?.postMessage({ closed: true }));
	}
});
