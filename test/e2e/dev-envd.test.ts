// The development envd (dev/envd/), driven directly: Connect clients made from
// the generated descriptors, speaking JSON as E2B's SDK does, and plain HTTP
// for /health and /files.

import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdServer, startEnvdServer } from "../../dev/envd/server.ts";
import { Filesystem, FileType } from "../../src/gen/envd/filesystem/filesystem_pb.ts";
import { Process, type ProcessEvent, Signal } from "../../src/gen/envd/process/process_pb.ts";
import { until } from "./until.ts";

const scratch: string[] = [];
function scratchDir(prefix: string): string {
	const dir = mkdtempSync(join(tmpdir(), prefix));
	scratch.push(dir);
	return dir;
}

async function startEnvd(options: { accessToken?: string } = {}): Promise<{ envd: EnvdServer; url: string }> {
	const envd = await startEnvdServer({ root: scratchDir("dev-envd-test-"), sandboxId: "envdtest", ...options });
	return { envd, url: `http://127.0.0.1:${envd.port}` };
}

function clients(url: string, headers: Record<string, string> = {}) {
	// As the SDK's transport: Connect with JSON messages.
	const transport = createConnectTransport({
		baseUrl: url,
		httpVersion: "1.1",
		useBinaryFormat: false,
		interceptors: [
			(next) => (req) => {
				for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
				return next(req);
			},
		],
	});
	return { fs: createClient(Filesystem, transport), proc: createClient(Process, transport) };
}

async function codeOf(call: Promise<unknown>): Promise<Code | "OK"> {
	try {
		await call;
		return "OK";
	} catch (error) {
		return ConnectError.from(error).code;
	}
}

interface TimedEvent {
	at: number;
	event: ProcessEvent;
}

async function collect(events: AsyncIterable<{ event?: ProcessEvent }>): Promise<TimedEvent[]> {
	const out: TimedEvent[] = [];
	for await (const response of events) {
		if (response.event !== undefined) out.push({ at: performance.now(), event: response.event });
	}
	return out;
}

function text(events: TimedEvent[], stream: "stdout" | "stderr"): string {
	return events
		.map(({ event }) =>
			event.event.case === "data" && event.event.value.output.case === stream
				? Buffer.from(event.event.value.output.value).toString("utf8")
				: "",
		)
		.join("");
}

function endOf(events: TimedEvent[]) {
	const last = events.at(-1)?.event.event;
	if (last?.case !== "end") throw new Error(`the stream did not end with an end event: ${last?.case}`);
	return last.value;
}

/** A multipart body as the SDK's FormData sends it: each part named "file", its filename the sandbox path. */
function multipart(files: { filename: string; data: Buffer }[]): { body: Buffer; contentType: string } {
	const boundary = `----envdtest${randomBytes(8).toString("hex")}`;
	const parts: Buffer[] = [];
	for (const file of files) {
		parts.push(
			Buffer.from(
				`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
			),
			file.data,
			Buffer.from("\r\n"),
		);
	}
	parts.push(Buffer.from(`--${boundary}--\r\n`));
	return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

function sha256(data: Buffer): string {
	return createHash("sha256").update(data).digest("hex");
}

afterAll(() => {
	for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe("an open sandbox", () => {
	let envd: EnvdServer;
	let url: string;
	let root: string;
	let fs: ReturnType<typeof clients>["fs"];
	let proc: ReturnType<typeof clients>["proc"];

	beforeAll(async () => {
		({ envd, url } = await startEnvd());
		root = envd.handler.root;
		({ fs, proc } = clients(url));
	});
	afterAll(() => envd?.close());

	it("answers /health with 204", async () => {
		const res = await fetch(`${url}/health`);
		expect(res.status).toBe(204);
		expect(res.headers.get("cache-control")).toBe("no-store");
	});

	it("makes, stats, lists, renames and removes, under the sandbox's root", async () => {
		const made = await fs.makeDir({ path: "/home/user/project/src" });
		expect(made.entry).toMatchObject({ name: "src", path: "/home/user/project/src", type: FileType.DIRECTORY });
		expect(existsSync(join(root, "home/user/project/src"))).toBe(true);
		expect(await codeOf(fs.makeDir({ path: "~/project/src" }))).toBe(Code.AlreadyExists);

		writeFileSync(join(root, "home/user/project/src/main.txt"), "twelve bytes");
		const stat = await fs.stat({ path: "project/src/main.txt" });
		expect(stat.entry).toMatchObject({
			name: "main.txt",
			path: "/home/user/project/src/main.txt",
			type: FileType.FILE,
			size: 12n,
			permissions: "-rw-r--r--",
			owner: "user",
		});
		expect(Number(stat.entry?.modifiedTime?.seconds)).toBeGreaterThan(Date.now() / 1000 - 60);

		const shallow = await fs.listDir({ path: "/home/user/project", depth: 1 });
		expect(shallow.entries.map((e) => e.path)).toEqual(["/home/user/project/src"]);
		const deep = await fs.listDir({ path: "/home/user/project", depth: 2 });
		expect(deep.entries.map((e) => [e.path, e.type])).toEqual([
			["/home/user/project/src", FileType.DIRECTORY],
			["/home/user/project/src/main.txt", FileType.FILE],
		]);
		expect(await codeOf(fs.listDir({ path: "/home/user/project/src/main.txt" }))).toBe(Code.InvalidArgument);
		expect(await codeOf(fs.listDir({ path: "/home/user/nothing" }))).toBe(Code.NotFound);

		const moved = await fs.move({ source: "/home/user/project/src/main.txt", destination: "/tmp/out/main.txt" });
		expect(moved.entry).toMatchObject({ path: "/tmp/out/main.txt", size: 12n });
		expect(readFileSync(join(root, "tmp/out/main.txt"), "utf8")).toBe("twelve bytes");
		expect(await codeOf(fs.stat({ path: "/home/user/project/src/main.txt" }))).toBe(Code.NotFound);
		expect(await codeOf(fs.move({ source: "/home/user/nope", destination: "/tmp/x" }))).toBe(Code.NotFound);

		await fs.remove({ path: "/home/user/project" });
		expect(existsSync(join(root, "home/user/project"))).toBe(false);
		// As os.RemoveAll: removing what is not there is fine.
		await fs.remove({ path: "/home/user/project" });
		expect(await codeOf(fs.stat({ path: "/home/user/project" }))).toBe(Code.NotFound);
	});

	it("serves gRPC-web and binary Connect too", async () => {
		writeFileSync(join(root, "home/user/web.txt"), "w");
		const grpcWeb = createClient(Filesystem, createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" }));
		expect((await grpcWeb.stat({ path: "web.txt" })).entry?.size).toBe(1n);
		const binary = createClient(
			Filesystem,
			createConnectTransport({ baseUrl: url, httpVersion: "1.1", useBinaryFormat: true }),
		);
		expect((await binary.stat({ path: "web.txt" })).entry?.path).toBe("/home/user/web.txt");
	});

	it("answers Unimplemented for what it leaves out, and NotFound for unknown paths", async () => {
		expect(await codeOf(fs.createWatcher({ path: "/home/user" }))).toBe(Code.Unimplemented);
		expect(await codeOf(proc.update({}))).toBe(Code.Unimplemented);
		const pty = proc.start({ process: { cmd: "/bin/bash", args: [] }, pty: { size: { cols: 80, rows: 24 } } });
		expect(await codeOf(collect(pty))).toBe(Code.Unimplemented);
		expect((await fetch(`${url}/nothing/here`, { method: "POST" })).status).toBe(404);
	});

	it("uploads files as the SDK does (multipart, filename = path) and answers envd's EntryInfo list", async () => {
		const { body, contentType } = multipart([
			{ filename: "/home/user/docs/a.txt", data: Buffer.from("alpha") },
			{ filename: "notes/b.txt", data: Buffer.from("") },
		]);
		const res = await fetch(`${url}/files`, { method: "POST", headers: { "content-type": contentType }, body });
		expect(res.status).toBe(200);
		expect(await res.json()).toEqual([
			{ name: "a.txt", path: "/home/user/docs/a.txt", type: "file" },
			{ name: "b.txt", path: "/home/user/notes/b.txt", type: "file" },
		]);
		expect(readFileSync(join(root, "home/user/docs/a.txt"), "utf8")).toBe("alpha");
		expect(readFileSync(join(root, "home/user/notes/b.txt"), "utf8")).toBe("");

		// One file with ?path=, as files.write(path, data) sends it; an existing file is replaced.
		const one = multipart([{ filename: "ignored", data: Buffer.from("replaced") }]);
		const replaced = await fetch(`${url}/files?path=${encodeURIComponent("/home/user/docs/a.txt")}`, {
			method: "POST",
			headers: { "content-type": one.contentType },
			body: one.body,
		});
		expect(await replaced.json()).toEqual([{ name: "a.txt", path: "/home/user/docs/a.txt", type: "file" }]);

		const download = await fetch(`${url}/files?path=docs/a.txt&username=user`, {
			headers: { "accept-encoding": "identity" },
		});
		expect(download.status).toBe(200);
		expect(download.headers.get("content-length")).toBe("8");
		expect(download.headers.get("content-disposition")).toBe("inline; filename=a.txt");
		expect(await download.text()).toBe("replaced");

		const missing = await fetch(`${url}/files?path=/home/user/none.txt`);
		expect(missing.status).toBe(404);
		expect(await missing.json()).toEqual({ code: 404, message: "path '/home/user/none.txt' does not exist" });
		expect((await fetch(`${url}/files?path=/home/user`)).status).toBe(400);
		expect((await fetch(`${url}/files?path=x&username=nobody`)).status).toBe(401);

		// File metadata (envd 0.6.2's X-Metadata-* headers, kept as xattrs) is refused, not dropped.
		const withMetadata = await fetch(`${url}/files?path=meta.txt`, {
			method: "POST",
			headers: { "content-type": "application/octet-stream", "x-metadata-owner": "me" },
			body: "m",
		});
		expect(withMetadata.status).toBe(400);
		expect(existsSync(join(root, "home/user/meta.txt"))).toBe(false);

		// envd hands multipart/* to Go's Request.MultipartReader, which takes form-data only.
		const mixed = await fetch(`${url}/files?path=mixed.txt`, {
			method: "POST",
			headers: { "content-type": "multipart/mixed; boundary=xyz" },
			body: '--xyz\r\nContent-Disposition: form-data; name="file"; filename="mixed.txt"\r\n\r\nm\r\n--xyz--\r\n',
		});
		expect(mixed.status).toBe(500);
		expect(await mixed.text()).toContain("request Content-Type isn't multipart/form-data");
		expect(existsSync(join(root, "home/user/mixed.txt"))).toBe(false);
	});

	it("moves 5 MiB both ways intact: multipart and octet-stream up, identity and gzip down", async () => {
		const data = randomBytes(5 * 1024 * 1024);
		const hash = sha256(data);
		const { body, contentType } = multipart([{ filename: "/home/user/big.bin", data }]);
		const up = await fetch(`${url}/files`, { method: "POST", headers: { "content-type": contentType }, body });
		expect(up.status).toBe(200);
		expect(sha256(readFileSync(join(root, "home/user/big.bin")))).toBe(hash);

		const raw = await fetch(`${url}/files?path=big-raw.bin`, {
			method: "POST",
			headers: { "content-type": "application/octet-stream" },
			body: data,
		});
		expect(await raw.json()).toEqual([{ name: "big-raw.bin", path: "/home/user/big-raw.bin", type: "file" }]);
		expect(sha256(readFileSync(join(root, "home/user/big-raw.bin")))).toBe(hash);

		const identity = await fetch(`${url}/files?path=big.bin`, { headers: { "accept-encoding": "identity" } });
		expect(identity.headers.get("content-encoding")).toBeNull();
		expect(sha256(Buffer.from(await identity.arrayBuffer()))).toBe(hash);

		// Node's fetch would decode gzip itself; a raw request shows what envd sends.
		const { request } = await import("node:http");
		const gzipped = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
			request(`${url}/files?path=big.bin`, { headers: { "accept-encoding": "gzip, deflate" } }, async (res) => {
				const chunks: Buffer[] = [];
				for await (const chunk of res) chunks.push(chunk as Buffer);
				resolve({ encoding: res.headers["content-encoding"], body: Buffer.concat(chunks) });
			})
				.on("error", reject)
				.end();
		});
		expect(gzipped.encoding).toBe("gzip");
		expect(sha256(gunzipSync(gzipped.body))).toBe(hash);
	});

	it("streams a command's output as it comes, then its exit code", async () => {
		// After each line the command waits until the test has read it (and
		// made the file it waits for), so output held back until the command
		// ends would never let it end: only the deadline would.
		mkdirSync(join(root, "home/user/streamed"));
		const script = "for i in 1 2 3 4; do echo line $i; while [ ! -e streamed/$i ]; do sleep 0.02; done; done";
		const events: TimedEvent[] = [];
		let read = 0;
		for await (const response of proc.start(
			{ process: { cmd: "/bin/bash", args: ["-l", "-c", script] } },
			{ headers: { "keepalive-ping-interval": "50" }, timeoutMs: 30_000 },
		)) {
			if (response.event === undefined) continue;
			events.push({ at: performance.now(), event: response.event });
			for (const line of text(events, "stdout").split("\n").slice(read, -1)) {
				read += 1;
				expect(line).toBe(`line ${read}`);
				writeFileSync(join(root, `home/user/streamed/${read}`), "");
			}
		}
		rmSync(join(root, "home/user/streamed"), { recursive: true });
		expect(events[0]?.event.event.case).toBe("start");
		const end = endOf(events);
		expect(end).toMatchObject({ exitCode: 0, exited: true, status: "exit status 0" });
		expect(end.error).toBeUndefined();
		expect(text(events, "stdout")).toBe("line 1\nline 2\nline 3\nline 4\n");
		// Each line in its own event, each read before the command went on.
		expect(events.filter((e) => e.event.event.case === "data")).toHaveLength(4);
	});

	it("runs in the sandbox's home with the sandbox's variables, and passes cwd and envs", async () => {
		writeFileSync(join(root, "home/user/here.txt"), "");
		const events = await collect(
			proc.start({
				process: {
					cmd: "/bin/bash",
					args: ["-l", "-c", 'ls; echo "$E2B_SANDBOX $E2B_SANDBOX_ID $USER $GREETING"; cd /; pwd'],
					envs: { GREETING: "hi" },
				},
				stdin: false,
			}),
		);
		expect(text(events, "stdout")).toContain("here.txt\n");
		expect(text(events, "stdout")).toContain("true envdtest user hi\n");

		await fs.makeDir({ path: "/tmp/work" });
		const inTmp = await collect(proc.start({ process: { cmd: "/bin/pwd", args: [], cwd: "/tmp/work" } }));
		expect(text(inTmp, "stdout")).toBe(`${join(root, "tmp/work")}\n`);
		expect(await codeOf(collect(proc.start({ process: { cmd: "/bin/pwd", args: [], cwd: "/nope" } })))).toBe(
			Code.InvalidArgument,
		);
		expect(await codeOf(collect(proc.start({ process: { cmd: "/no/such/binary", args: [] } })))).toBe(
			Code.InvalidArgument,
		);
	});

	it("ends a failing command with its exit code and envd's error", async () => {
		const events = await collect(
			proc.start({ process: { cmd: "/bin/bash", args: ["-l", "-c", "echo oops >&2; exit 7"] }, stdin: false }),
		);
		expect(text(events, "stderr")).toBe("oops\n");
		expect(endOf(events)).toMatchObject({ exitCode: 7, exited: true, status: "exit status 7", error: "exit status 7" });
	});

	it("lists, feeds, signals and re-attaches to a running command", async () => {
		const stream = proc
			.start({ process: { cmd: "/bin/cat", args: [] }, stdin: true, tag: "cat" })
			[Symbol.asyncIterator]();
		const first = await stream.next();
		const start = first.value?.event?.event;
		if (start?.case !== "start") throw new Error("no start event");
		const pid = start.value.pid;
		expect((await proc.list({})).processes.map((p) => [p.pid, p.tag, p.config?.cmd])).toContainEqual([
			pid,
			"cat",
			"/bin/cat",
		]);

		await proc.sendInput({
			process: { selector: { case: "pid", value: pid } },
			input: { input: { case: "stdin", value: Buffer.from("echo me\n") } },
		});
		const echoed = await stream.next();
		expect(echoed.value?.event?.event).toMatchObject({ case: "data" });

		// A second client attaches by tag and sees the end as well: once it has
		// its start event, it is attached.
		const attaching = proc.connect({ process: { selector: { case: "tag", value: "cat" } } })[Symbol.asyncIterator]();
		const attachedStart = (await attaching.next()).value?.event;
		const attached = collect({ [Symbol.asyncIterator]: () => attaching });
		await proc.closeStdin({ process: { selector: { case: "pid", value: pid } } });
		const rest: TimedEvent[] = [];
		for (let next = await stream.next(); !next.done; next = await stream.next()) {
			if (next.value.event !== undefined) rest.push({ at: performance.now(), event: next.value.event });
		}
		expect(endOf(rest).exitCode).toBe(0);
		const seen = await attached;
		expect(attachedStart?.event).toMatchObject({ case: "start", value: { pid } });
		expect(endOf(seen).exitCode).toBe(0);

		// Ended: Connect still answers its exit for a while; the other RPCs no longer find it.
		const late = await collect(proc.connect({ process: { selector: { case: "pid", value: pid } } }));
		expect(late.map((e) => e.event.event.case)).toEqual(["start", "end"]);
		expect(
			await codeOf(proc.sendSignal({ process: { selector: { case: "pid", value: pid } }, signal: Signal.SIGKILL })),
		).toBe(Code.NotFound);

		const sleeper = proc.start({ process: { cmd: "/bin/bash", args: ["-l", "-c", "sleep 30; echo never"] } });
		const sleeping = sleeper[Symbol.asyncIterator]();
		const sleeperStart = (await sleeping.next()).value?.event?.event;
		if (sleeperStart?.case !== "start") throw new Error("no start event");
		await proc.sendSignal({
			process: { selector: { case: "pid", value: sleeperStart.value.pid } },
			signal: Signal.SIGKILL,
		});
		const killed: TimedEvent[] = [];
		for (let next = await sleeping.next(); !next.done; next = await sleeping.next()) {
			if (next.value.event !== undefined) killed.push({ at: performance.now(), event: next.value.event });
		}
		expect(endOf(killed)).toMatchObject({
			exitCode: -1,
			exited: false,
			status: "signal: killed",
			error: "signal: killed",
		});
	});

	it("sends keepalives while a command is quiet, and kills it at the request's deadline", async () => {
		// Quiet until the test has counted two keepalives: counted, not timed.
		const stop = join(root, "home/user/quiet-stop");
		const quiet: TimedEvent[] = [];
		for await (const response of proc.start(
			{ process: { cmd: "/bin/bash", args: ["-l", "-c", "while [ ! -e quiet-stop ]; do sleep 0.05; done"] } },
			{ headers: { "keepalive-ping-interval": "1" }, timeoutMs: 30_000 },
		)) {
			if (response.event === undefined) continue;
			quiet.push({ at: performance.now(), event: response.event });
			if (quiet.filter((e) => e.event.event.case === "keepalive").length === 2) writeFileSync(stop, "");
		}
		rmSync(stop);
		expect(quiet.filter((e) => e.event.event.case === "keepalive").length).toBeGreaterThanOrEqual(2);
		expect(quiet.some((e) => e.event.event.case === "data")).toBe(false);
		expect(endOf(quiet).exitCode).toBe(0);

		// A command that would run for 30 s, on a deadline of 0.8 s.
		const marker = join(root, "home/user/late-marker");
		const started = performance.now();
		const code = await codeOf(
			collect(
				proc.start(
					{ process: { cmd: "/bin/bash", args: ["-l", "-c", `sleep 30; touch ${marker}`] } },
					{ timeoutMs: 800 },
				),
			),
		);
		expect(code).toBe(Code.DeadlineExceeded);
		// By the deadline, not by the command's end; the margin is for a loaded machine.
		expect(performance.now() - started).toBeLessThan(10_000);
		// envd kills the command at the deadline: long before its 30 s are up,
		// it is gone, and it never got to its touch.
		await until("the command to be gone", async () => (await proc.list({})).processes.length === 0);
		expect(existsSync(marker)).toBe(false);
	});
});

describe("paths", () => {
	let envd: EnvdServer;
	let url: string;
	let root: string;
	let fs: ReturnType<typeof clients>["fs"];
	let outside: string;

	beforeAll(async () => {
		({ envd, url } = await startEnvd());
		root = envd.handler.root;
		({ fs } = clients(url));
		outside = scratchDir("dev-envd-outside-");
		writeFileSync(join(outside, "secret.txt"), "outside the sandbox");
	});
	afterAll(() => envd?.close());

	it("refuses a path whose .. climbs above the sandbox's /", async () => {
		expect(await codeOf(fs.stat({ path: "/../etc/passwd" }))).toBe(Code.InvalidArgument);
		expect(await codeOf(fs.stat({ path: "../../../../etc" }))).toBe(Code.InvalidArgument);
		expect(await codeOf(fs.makeDir({ path: "/home/../../x" }))).toBe(Code.InvalidArgument);
		expect(await codeOf(fs.remove({ path: "/.." }))).toBe(Code.InvalidArgument);
		const up = await fetch(`${url}/files?path=${encodeURIComponent("../../../etc/passwd")}`);
		expect(up.status).toBe(400);
		expect((await up.json()) as { message: string }).toMatchObject({ code: 400 });
		// Climbing that stays inside is ordinary: /home/user/../../etc is the sandbox's /etc.
		expect(await codeOf(fs.stat({ path: "/home/user/../../etc/passwd" }))).toBe(Code.NotFound);
	});

	it("refuses symlinks that lead outside the root, for reads, writes, lists and commands' cwd", async () => {
		symlinkSync(outside, join(root, "home/user/out"));
		symlinkSync(join(outside, "secret.txt"), join(root, "home/user/secret-link"));
		symlinkSync(join(outside, "new.txt"), join(root, "home/user/dangling"));
		expect((await fetch(`${url}/files?path=out/secret.txt`)).status).toBe(400);
		expect((await fetch(`${url}/files?path=secret-link`)).status).toBe(400);
		expect(await codeOf(fs.listDir({ path: "/home/user/out" }))).toBe(Code.InvalidArgument);
		expect(await codeOf(fs.stat({ path: "/home/user/out/secret.txt" }))).toBe(Code.InvalidArgument);
		expect(await codeOf(fs.makeDir({ path: "/home/user/out/made" }))).toBe(Code.InvalidArgument);
		expect(await codeOf(fs.move({ source: "/home/user/out/secret.txt", destination: "/home/user/stolen" }))).toBe(
			Code.InvalidArgument,
		);
		for (const target of ["out/new.txt", "dangling"]) {
			const { body, contentType } = multipart([{ filename: target, data: Buffer.from("x") }]);
			const res = await fetch(`${url}/files`, { method: "POST", headers: { "content-type": contentType }, body });
			expect(res.status).toBe(400);
		}
		expect(existsSync(join(outside, "new.txt"))).toBe(false);
		expect(existsSync(join(outside, "made"))).toBe(false);
		const { proc } = clients(url);
		expect(await codeOf(collect(proc.start({ process: { cmd: "/bin/pwd", args: [], cwd: "/home/user/out" } })))).toBe(
			Code.InvalidArgument,
		);

		// The link itself is the sandbox's: it can be stat'ed (without its target's name) and removed.
		const link = await fs.stat({ path: "/home/user/out" });
		expect(link.entry).toMatchObject({ type: FileType.DIRECTORY, symlinkTarget: "", permissions: "Lrwxrwxrwx" });
		await fs.remove({ path: "/home/user/out" });
		expect(existsSync(join(outside, "secret.txt"))).toBe(true);

		// Links inside the root are followed.
		await fs.makeDir({ path: "/home/user/real" });
		symlinkSync(join(root, "home/user/real"), join(root, "home/user/inside"));
		writeFileSync(join(root, "home/user/real/f.txt"), "in");
		expect(await (await fetch(`${url}/files?path=inside/f.txt`)).text()).toBe("in");
		expect((await fs.stat({ path: "/home/user/inside" })).entry?.symlinkTarget).toBe("/home/user/real");
	});
});

describe("a secure sandbox", () => {
	const token = "envd-token-3f9a0c";
	let envd: EnvdServer;
	let url: string;

	beforeAll(async () => {
		({ envd, url } = await startEnvd({ accessToken: token }));
		writeFileSync(join(envd.handler.root, "home/user/s.txt"), "secure");
	});
	afterAll(() => envd?.close());

	it("refuses RPCs without X-Access-Token or with a wrong one, with envd's 401", async () => {
		const refused: Record<string, string>[] = [{}, { "x-access-token": "wrong" }, { "x-access-token": "" }];
		for (const headers of refused) {
			const res = await fetch(`${url}/filesystem.Filesystem/Stat`, {
				method: "POST",
				headers: { "content-type": "application/json", ...headers },
				body: JSON.stringify({ path: "s.txt" }),
			});
			expect(res.status).toBe(401);
			expect(res.headers.get("content-type")).toBe("application/json; charset=utf-8");
			expect(await res.json()).toEqual({
				code: 401,
				message: "unauthorized access, please provide a valid access token or method signing if supported",
			});
			expect(await codeOf(clients(url, headers).fs.stat({ path: "s.txt" }))).toBe(Code.Unauthenticated);
			expect(await codeOf(collect(clients(url, headers).proc.start({ process: { cmd: "/bin/true", args: [] } })))).toBe(
				Code.Unauthenticated,
			);
		}
	});

	it("accepts the right token", async () => {
		const { fs, proc } = clients(url, { "x-access-token": token });
		expect((await fs.stat({ path: "s.txt" })).entry?.size).toBe(6n);
		const events = await collect(proc.start({ process: { cmd: "/bin/bash", args: ["-l", "-c", "cat s.txt"] } }));
		expect(text(events, "stdout")).toBe("secure");
	});

	it("answers /health without a token, and /files with the token or a valid signature only", async () => {
		expect((await fetch(`${url}/health`)).status).toBe(204);
		const bare = await fetch(`${url}/files?path=s.txt`);
		expect(bare.status).toBe(401);
		expect(await bare.json()).toEqual({ code: 401, message: "missing signature query parameter" });
		const wrong = await fetch(`${url}/files?path=s.txt`, { headers: { "x-access-token": "nope" } });
		expect(await wrong.json()).toEqual({ code: 401, message: "access token present in header but does not match" });
		expect(await (await fetch(`${url}/files?path=s.txt`, { headers: { "x-access-token": token } })).text()).toBe(
			"secure",
		);

		// The SDK's downloadUrl/uploadUrl: v1_ + unpadded base64 SHA-256 of path:operation:user:token[:expiration].
		const sign = (path: string, operation: string, expiration?: number) =>
			`v1_${createHash("sha256")
				.update([path, operation, "", token, ...(expiration === undefined ? [] : [String(expiration)])].join(":"))
				.digest("base64")
				.replace(/=+$/, "")}`;
		const signed = await fetch(`${url}/files?path=s.txt&signature=${encodeURIComponent(sign("s.txt", "read"))}`);
		expect(await signed.text()).toBe("secure");
		const wrongOp = await fetch(`${url}/files?path=s.txt&signature=${encodeURIComponent(sign("s.txt", "write"))}`);
		expect(await wrongOp.json()).toEqual({ code: 401, message: "invalid signature" });
		const past = Math.floor(Date.now() / 1000) - 10;
		const expired = await fetch(
			`${url}/files?path=s.txt&signature=${encodeURIComponent(sign("s.txt", "read", past))}&signature_expiration=${past}`,
		);
		expect(await expired.json()).toEqual({ code: 401, message: "signature is already expired" });

		const { body, contentType } = multipart([{ filename: "up.txt", data: Buffer.from("signed upload") }]);
		const upload = await fetch(`${url}/files?path=up.txt&signature=${encodeURIComponent(sign("up.txt", "write"))}`, {
			method: "POST",
			headers: { "content-type": contentType },
			body,
		});
		expect(upload.status).toBe(200);
		expect(readFileSync(join(envd.handler.root, "home/user/up.txt"), "utf8")).toBe("signed upload");
		const unsigned = await fetch(`${url}/files?path=up.txt`, {
			method: "POST",
			headers: { "content-type": contentType },
			body,
		});
		expect(unsigned.status).toBe(401);
	});
});

it("kills its running commands when it closes, and keeps its root", async () => {
	const { envd, url } = await startEnvd();
	const { proc } = clients(url);
	const marker = join(envd.handler.root, "home/user/after-close");
	const stream = proc.start({ process: { cmd: "/bin/bash", args: ["-l", "-c", `sleep 30; touch ${marker}`] } });
	const first = await stream[Symbol.asyncIterator]().next();
	const start = first.value?.event?.event;
	if (start?.case !== "start") throw new Error("no start event");
	await envd.close();
	// The command (which would run for 30 s) is gone: it never gets to its touch.
	await until("the command's process to be gone", () => !processExists(start.value.pid));
	expect(existsSync(marker)).toBe(false);
	expect(existsSync(join(envd.handler.root, "home/user"))).toBe(true);
});

function processExists(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		return (error as NodeJS.ErrnoException).code === "EPERM";
	}
}
