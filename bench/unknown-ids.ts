// What a flood of unknown sandbox IDs from one client costs the operator:
// requests for random IDs the control plane does not know, each asked for
// once, so that no cache can hold them. Counted: the catalog objects' calls
// (in the objects themselves), the SQLite files their storage left behind,
// workerd's resident memory, and the ResumeSandbox calls. The proxy is the
// bundle `wrangler deploy --dry-run` builds, in workerd through Miniflare,
// with wrangler.toml's budgets.
//
//   npm run bench:unknown-ids            5,000 IDs
//   UNKNOWN_IDS=1000 npm run bench:unknown-ids
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { startStack } from "../dev/stack.ts";
import { fetchVia } from "../test/e2e/http-client.ts";
import { rssBytesOf } from "./harness/proc.ts";
import { apiSecret, buildDirFor, buildWorker, startProxy } from "./harness/workers.ts";

const count = Number(process.env.UNKNOWN_IDS ?? 5000);
const concurrency = 16;

/** The objects' SQLite files, and their bytes (write-ahead logs included). */
function sqliteFiles(dir: string): { files: number; bytes: number } {
	let files = 0;
	let bytes = 0;
	for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
		if (!entry.isFile() || !/\.sqlite(-wal|-shm)?$/.test(entry.name)) continue;
		if (entry.name.endsWith(".sqlite")) files++;
		bytes += statSync(join(entry.parentPath, entry.name)).size;
	}
	return { files, bytes };
}

const stack = await startStack({ apiSecret, controlPlanePort: 0, nodePort: 0, resumeDelayMs: 50 });
const build = buildWorker(buildDirFor("unknown-ids"));
const storage = mkdtempSync(join(process.env.BENCH_STORAGE_DIR ?? "/dev/shm", "unknown-ids-"));
const proxy = await startProxy({
	name: "proxy",
	scriptPath: build.scriptPath,
	controlPlaneUrl: stack.controlPlaneUrl,
	nodeOriginTemplate: `http://{ip}:${stack.nodePort}`,
	storageDir: storage,
});
try {
	// One warm-up request, so that the figures are the flood's and not the first isolate's.
	await fetchVia(proxy.url, `3000-warmup${randomBytes(4).toString("hex")}.localhost`, "/", {
		headers: { accept: "application/json", "cf-connecting-ip": "198.51.100.99" },
	});
	const filesBefore = sqliteFiles(storage);
	const callsBefore = await proxy.objectCalls();
	const rssBefore = rssBytesOf(proxy.pid);
	const resumesBefore = stack.controlPlane.calls().length;
	const statuses: Record<number, number> = {};
	const started = performance.now();
	let next = 0;
	await Promise.all(
		Array.from({ length: concurrency }, async () => {
			while (next < count) {
				next++;
				const id = `zz${randomBytes(8).toString("hex")}`;
				const response = await fetchVia(proxy.url, `3000-${id}.localhost`, "/", {
					headers: { accept: "application/json", "cf-connecting-ip": "198.51.100.7" },
				});
				statuses[response.status] = (statuses[response.status] ?? 0) + 1;
			}
		}),
	);
	const seconds = (performance.now() - started) / 1000;
	const callsAfter = await proxy.objectCalls();
	const figures = {
		requests: count,
		seconds: Number(seconds.toFixed(1)),
		statuses,
		objectLookups: callsAfter.lookup - callsBefore.lookup,
		sqliteFilesAdded: sqliteFiles(storage).files - filesBefore.files,
		sqliteBytesAdded: sqliteFiles(storage).bytes - filesBefore.bytes,
		rssGrowthKiBPerId: Math.round((rssBytesOf(proxy.pid) - rssBefore) / 1024 / count),
		resumeSandboxCalls: stack.controlPlane.calls().length - resumesBefore,
	};
	console.log(JSON.stringify(figures, null, 2));
} finally {
	await proxy.dispose();
	await stack.close();
	rmSync(storage, { recursive: true, force: true });
}
