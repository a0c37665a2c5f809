// envd's EntryInfo for a path (E2B's shared/pkg/filesystem GetEntryFromPath and
// envd's filesystem.entryInfo): lstat for the entry itself; for a symlink, the
// type and permission bits of its target.

import { lstat, realpath, stat } from "node:fs/promises";
import { posix } from "node:path";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { type EntryInfo, EntryInfoSchema, FileType } from "../../src/gen/envd/filesystem/filesystem_pb.ts";
import { DEFAULT_USER, sandboxPathOf } from "./paths.ts";

type BigStats = Awaited<ReturnType<typeof lstat>> & { mtimeNs: bigint; mode: bigint; size: bigint };

function typeOf(stats: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean }): FileType {
	if (stats.isFile()) return FileType.FILE;
	if (stats.isDirectory()) return FileType.DIRECTORY;
	if (stats.isSymbolicLink()) return FileType.SYMLINK;
	return FileType.UNSPECIFIED;
}

const S_IFMT = 0o170000;
const TYPE_LETTERS: ReadonlyMap<number, string> = new Map([
	[0o040000, "d"],
	[0o120000, "L"],
	[0o060000, "D"],
	[0o010000, "p"],
	[0o140000, "S"],
	[0o020000, "Dc"],
]);

/** Go's os.FileMode.String() for a Unix st_mode, e.g. "-rw-r--r--", "drwxr-xr-x", "Lrwxrwxrwx". */
export function goModeString(mode: number): string {
	let letters = TYPE_LETTERS.get(mode & S_IFMT) ?? "";
	// Go's order is "dalTLDpSugct?"; u, g and t come after the type letters but before c.
	const special = `${mode & 0o4000 ? "u" : ""}${mode & 0o2000 ? "g" : ""}`;
	if (letters === "Dc") letters = `D${special}c`;
	else letters += special;
	if (mode & 0o1000) letters += "t";
	const rwx = "rwxrwxrwx";
	let perm = "";
	for (let i = 0; i < 9; i++) perm += mode & (1 << (8 - i)) ? rwx[i] : "-";
	return `${letters || "-"}${perm}`;
}

/**
 * The entry at `host`, reported under the sandbox path `path`. Throws the
 * lstat error (ENOENT when there is nothing there).
 */
export async function entryInfo(root: string, host: string, path: string): Promise<EntryInfo> {
	const own = (await lstat(host, { bigint: true })) as unknown as BigStats;
	const mode = Number(own.mode);
	let type = typeOf(own);
	let perm = mode & 0o777;
	let symlinkTarget: string | undefined;
	if (own.isSymbolicLink()) {
		// As E2B's followSymlink: the resolved target, or the link's own path if it cannot be resolved.
		let target = host;
		try {
			target = await realpath(host);
		} catch {}
		// A target outside the sandbox is not named (its host path means nothing in the sandbox).
		symlinkTarget = sandboxPathOf(root, target) ?? "";
		try {
			const targetStats = await stat(host);
			type = typeOf(targetStats);
			perm = targetStats.mode & 0o777;
		} catch {
			type = FileType.UNSPECIFIED;
			perm = 0;
		}
	}
	const mtimeNs = own.mtimeNs;
	return create(EntryInfoSchema, {
		name: path === "/" ? "/" : posix.basename(path),
		type,
		path,
		size: own.size,
		mode: perm,
		permissions: goModeString(mode),
		// Every file of the sandbox belongs to the host's user; the sandbox calls that user "user".
		owner: DEFAULT_USER,
		group: DEFAULT_USER,
		modifiedTime: create(TimestampSchema, {
			seconds: mtimeNs / 1_000_000_000n,
			nanos: Number(mtimeNs % 1_000_000_000n),
		}),
		...(symlinkTarget === undefined ? {} : { symlinkTarget }),
	});
}
