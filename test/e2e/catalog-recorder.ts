import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

/** One write the control plane made to the edge's catalog API. */
export interface CatalogWrite {
	method: string;
	sandboxId: string;
	executionId?: string;
	body?: Record<string, unknown>;
}

export interface CatalogRecorder {
	/** Where the control plane is to write: its `edgeUrl`. */
	url: string;
	writes: CatalogWrite[];
	close(): Promise<void>;
}

/**
 * The edge's catalog API reduced to recording what the development control
 * plane writes to it, for tests of the control plane without a Worker.
 */
export async function startCatalogRecorder(): Promise<CatalogRecorder> {
	const writes: CatalogWrite[] = [];
	const server = createServer((req, res) => {
		let text = "";
		req.on("data", (chunk) => {
			text += chunk;
		});
		req.on("end", () => {
			const url = new URL(req.url ?? "/", "http://edge");
			writes.push({
				method: req.method ?? "",
				sandboxId: decodeURIComponent(url.pathname.split("/").at(-1) ?? ""),
				...(url.searchParams.has("execution_id") ? { executionId: url.searchParams.get("execution_id") ?? "" } : {}),
				...(text === "" ? {} : { body: JSON.parse(text) }),
			});
			res.writeHead(204).end();
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return {
		url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
		writes,
		close: async () => {
			server.closeAllConnections();
			await new Promise((resolve) => server.close(resolve));
		},
	};
}
