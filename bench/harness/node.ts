import { Worker } from "node:worker_threads";

export interface NodeCounts {
	requests: number;
	uploadedBytes: number;
	downloadedBytes: number;
	echoes: number;
}

/** The bench's node (see node-thread.ts), on 127.0.0.1 in a worker thread. */
export interface BenchNode {
	port: number;
	origin: string;
	counts(): Promise<NodeCounts>;
	close(): Promise<void>;
}

export async function startBenchNode(): Promise<BenchNode> {
	const thread = new Worker(new URL("./node-thread.ts", import.meta.url));
	const next = <T>(key: string) =>
		new Promise<T>((resolve, reject) => {
			const onMessage = (message: Record<string, unknown>) => {
				if (!(key in message)) return;
				thread.off("message", onMessage);
				thread.off("error", reject);
				resolve(message[key] as T);
			};
			thread.on("message", onMessage);
			thread.once("error", reject);
		});
	const port = await next<number>("port");
	let closing: Promise<void> | undefined;
	return {
		port,
		origin: `http://127.0.0.1:${port}`,
		counts() {
			const answer = next<NodeCounts>("counts");
			thread.postMessage({ type: "counts" });
			return answer;
		},
		close() {
			closing ??= (async () => {
				const closed = next<boolean>("closed");
				thread.postMessage({ type: "close" });
				await closed;
				await thread.terminate();
			})();
			return closing;
		},
	};
}
