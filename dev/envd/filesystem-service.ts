// filesystem.Filesystem as envd serves it (packages/envd/internal/services/
// filesystem): Stat, ListDir, MakeDir, Move and Remove, on the sandbox's
// scratch root. The watchers (WatchDir, CreateWatcher, GetWatcherEvents,
// RemoveWatcher) are left out, so Connect answers them Unimplemented.

import { lstat, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
	type EntryInfo,
	type Filesystem,
	ListDirResponseSchema,
	MakeDirResponseSchema,
	MoveResponseSchema,
	RemoveResponseSchema,
	StatResponseSchema,
} from "../../src/gen/envd/filesystem/filesystem_pb.ts";
import { entryInfo } from "./entry-info.ts";
import { hostPath, PathError, sandboxPath } from "./paths.ts";
import type { RpcUser } from "./rpc-user.ts";

export interface FilesystemContext {
	/** The sandbox's root on the host, a real path. */
	root: string;
	/** The caller's user (its home resolves relative paths), from Basic auth or the default. */
	userOf(context: HandlerContext): RpcUser;
}

function errnoOf(error: unknown): string | undefined {
	return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** A sandbox path, resolved on the host; a PathError becomes InvalidArgument, as envd answers a path it cannot resolve. */
async function resolve(
	fs: FilesystemContext,
	context: HandlerContext,
	raw: string,
	followLast: boolean,
): Promise<{ path: string; host: string }> {
	try {
		const path = sandboxPath(raw, fs.userOf(context).home);
		return { path, host: await hostPath(fs.root, path, followLast) };
	} catch (error) {
		if (error instanceof PathError) throw new ConnectError(error.message, Code.InvalidArgument);
		throw error;
	}
}

async function entryOrError(root: string, host: string, path: string): Promise<EntryInfo> {
	try {
		return await entryInfo(root, host, path);
	} catch (error) {
		if (errnoOf(error) === "ENOENT" || errnoOf(error) === "ENOTDIR") {
			throw new ConnectError(`file not found: lstat ${path}: no such file or directory`, Code.NotFound);
		}
		throw new ConnectError(`error getting file info: ${String(error)}`, Code.Internal);
	}
}

/** envd's permissions.EnsureDirs: every missing directory on the way; a file in the way is an error. */
export async function ensureDirs(host: string, path: string): Promise<void> {
	try {
		await mkdir(host, { recursive: true });
	} catch (error) {
		const code = errnoOf(error);
		if (code === "EEXIST" || code === "ENOTDIR") throw new Error(`path is a file: ${path}`);
		throw error;
	}
}

/** filepath.WalkDir order: names sorted, directories entered but not symlinks to them, down to `depth` levels. */
async function walk(
	root: string,
	dirHost: string,
	dirPath: string,
	depth: number,
	level: number,
	out: EntryInfo[],
): Promise<void> {
	const names = (await readdir(dirHost)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
	for (const name of names) {
		const host = join(dirHost, name);
		const path = posix.join(dirPath, name);
		let entry: EntryInfo;
		try {
			entry = await entryInfo(root, host, path);
		} catch (error) {
			// Gone since readdir: skipped, as envd skips NotFound entries.
			if (errnoOf(error) === "ENOENT") continue;
			throw error;
		}
		out.push(entry);
		// The walk does not follow symlinks: only a real directory is entered.
		if (level < depth && (await isRealDirectory(host))) await walk(root, host, path, depth, level + 1, out);
	}
}

async function isRealDirectory(host: string): Promise<boolean> {
	try {
		return (await lstat(host)).isDirectory();
	} catch {
		return false;
	}
}

export function filesystemService(fs: FilesystemContext): Partial<ServiceImpl<typeof Filesystem>> {
	return {
		async stat(req, context) {
			const { path, host } = await resolve(fs, context, req.path, false);
			return create(StatResponseSchema, { entry: await entryOrError(fs.root, host, path) });
		},

		async listDir(req, context) {
			const depth = req.depth === 0 ? 1 : req.depth;
			// The listed directory itself is followed if it is a symlink; the entries keep the requested path.
			const { path, host } = await resolve(fs, context, req.path, true);
			let stats: Awaited<ReturnType<typeof stat>>;
			try {
				stats = await stat(host);
			} catch (error) {
				if (errnoOf(error) === "ENOENT" || errnoOf(error) === "ENOTDIR") {
					throw new ConnectError(`path not found: lstat ${path}: no such file or directory`, Code.NotFound);
				}
				throw new ConnectError(`error resolving symlink: ${String(error)}`, Code.Internal);
			}
			if (!stats.isDirectory()) throw new ConnectError(`path is not a directory: ${path}`, Code.InvalidArgument);
			const entries: EntryInfo[] = [];
			try {
				await walk(fs.root, host, path, depth, 1, entries);
			} catch (error) {
				throw new ConnectError(`error reading directory ${path}: ${String(error)}`, Code.Internal);
			}
			return create(ListDirResponseSchema, { entries });
		},

		async makeDir(req, context) {
			const { path, host } = await resolve(fs, context, req.path, true);
			try {
				const stats = await stat(host);
				if (stats.isDirectory()) {
					throw new ConnectError(`directory already exists: ${path}`, Code.AlreadyExists);
				}
				throw new ConnectError(`path already exists but it is not a directory: ${path}`, Code.InvalidArgument);
			} catch (error) {
				if (error instanceof ConnectError) throw error;
				if (errnoOf(error) !== "ENOENT" && errnoOf(error) !== "ENOTDIR") {
					throw new ConnectError(`error getting file info: ${String(error)}`, Code.Internal);
				}
			}
			try {
				await ensureDirs(host, path);
			} catch (error) {
				throw new ConnectError(error instanceof Error ? error.message : String(error), Code.Internal);
			}
			return create(MakeDirResponseSchema, { entry: await entryOrError(fs.root, host, path) });
		},

		async move(req, context) {
			// rename(2) moves the source entry itself (a symlink stays a symlink) to the destination name.
			const source = await resolve(fs, context, req.source, false);
			const destination = await resolve(fs, context, req.destination, false);
			try {
				await ensureDirs(dirname(destination.host), posix.dirname(destination.path));
			} catch (error) {
				throw new ConnectError(error instanceof Error ? error.message : String(error), Code.Internal);
			}
			try {
				await rename(source.host, destination.host);
			} catch (error) {
				if (errnoOf(error) === "ENOENT") {
					throw new ConnectError(
						`source file not found: rename ${source.path} ${destination.path}: no such file or directory`,
						Code.NotFound,
					);
				}
				throw new ConnectError(`error renaming: ${String(error)}`, Code.Internal);
			}
			return create(MoveResponseSchema, { entry: await entryOrError(fs.root, destination.host, destination.path) });
		},

		async remove(req, context) {
			const { path, host } = await resolve(fs, context, req.path, false);
			if (path === "/") {
				throw new ConnectError("error removing file or directory: the sandbox's root cannot be removed", Code.Internal);
			}
			try {
				// os.RemoveAll: a missing path is not an error, and a symlink is removed, not its target.
				await rm(host, { recursive: true, force: true });
			} catch (error) {
				throw new ConnectError(`error removing file or directory: ${String(error)}`, Code.Internal);
			}
			return create(RemoveResponseSchema, {});
		},
	};
}
