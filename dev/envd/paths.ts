// A sandbox's filesystem as the development envd sees it: a scratch directory
// on the host stands for the sandbox's "/", so /home/user/a.txt is
// <root>/home/user/a.txt. Every path a client sends is resolved inside that
// root: ".." cannot climb above it, and symlinks (which commands run on the
// host can create) are followed component by component and refused when they
// lead outside.

import { mkdirSync } from "node:fs";
import { lstat, readlink } from "node:fs/promises";
import { dirname, join } from "node:path";

/** The users a sandbox knows, with their home directories (sandbox paths), as in E2B's base template. */
export const USERS: ReadonlyMap<string, string> = new Map([
	["user", "/home/user"],
	["root", "/root"],
]);

/** envd's default user, which E2B's sandboxes set by /init. */
export const DEFAULT_USER = "user";

// Linux's limit on symlinks followed while resolving one path (ELOOP).
const MAX_SYMLINKS = 40;

/** A path that cannot be used; `outside` when it leads outside the sandbox's root. */
export class PathError extends Error {
	readonly outside: boolean;
	constructor(message: string, outside = false) {
		super(message);
		this.name = "PathError";
		this.outside = outside;
	}
}

/** Creates the directories every sandbox has: the users' homes and /tmp. */
export function prepareRootSync(root: string): void {
	for (const home of USERS.values()) mkdirSync(join(root, home), { recursive: true });
	mkdirSync(join(root, "tmp"), { recursive: true });
}

/**
 * envd's permissions.ExpandAndResolve, on sandbox paths: "" is the user's
 * home, "~" and "~/x" expand to it, relative paths are under it. The result is
 * normalized; a path whose ".." would climb above "/" is refused (the kernel
 * would stop at "/", but a client that sends one is trying to get out).
 */
export function sandboxPath(raw: string, home: string): string {
	if (raw.includes("\0")) throw new PathError(`path '${raw}' contains a NUL byte`);
	let path = raw;
	if (path.startsWith("~")) {
		if (path.length > 1 && path[1] !== "/") {
			throw new PathError(`failed to expand path '${raw}': cannot expand user-specific home dir`);
		}
		path = home + path.slice(1);
	}
	if (!path.startsWith("/")) path = `${home}/${path}`;
	const segments: string[] = [];
	for (const segment of path.split("/")) {
		if (segment === "" || segment === ".") continue;
		if (segment === "..") {
			if (segments.length === 0) throw new PathError(`path '${raw}' is outside the sandbox`, true);
			segments.pop();
		} else {
			segments.push(segment);
		}
	}
	return `/${segments.join("/")}`;
}

/** The sandbox path of a host path under the root, or undefined when it is not under it. */
export function sandboxPathOf(root: string, host: string): string | undefined {
	if (host === root) return "/";
	if (host.startsWith(`${root}/`)) return host.slice(root.length);
	return undefined;
}

function isNotFound(error: unknown): boolean {
	const code = (error as NodeJS.ErrnoException).code;
	return code === "ENOENT" || code === "ENOTDIR";
}

/**
 * The host path that a sandbox path names, with every symlink on the way
 * resolved (the last one too when `followLast`), the way the kernel would
 * walk it. Components that do not exist are appended as they are. Throws a
 * PathError when the result is not under `root`, which must be a real path.
 */
export async function hostPath(root: string, path: string, followLast: boolean): Promise<string> {
	const pending = path.split("/").filter((s) => s !== "");
	let current = root;
	let links = 0;
	while (pending.length > 0) {
		const segment = pending.shift() as string;
		if (segment === ".") continue;
		if (segment === "..") {
			// `current` is resolved, so its parent is the real parent.
			current = dirname(current);
			continue;
		}
		const next = join(current, segment);
		let stats: Awaited<ReturnType<typeof lstat>>;
		try {
			stats = await lstat(next);
		} catch (error) {
			if (!isNotFound(error)) throw error;
			// Nothing below a missing entry exists: the rest is plain names.
			current = join(next, ...pending);
			break;
		}
		if (stats.isSymbolicLink() && (pending.length > 0 || followLast)) {
			if (++links > MAX_SYMLINKS) throw new PathError(`path '${path}': too many levels of symbolic links`);
			const target = await readlink(next);
			pending.unshift(...target.split("/").filter((s) => s !== ""));
			// A link's target is a host path: absolute ones start at the host's "/".
			if (target.startsWith("/")) current = "/";
		} else {
			current = next;
		}
	}
	if (sandboxPathOf(root, current) === undefined) throw new PathError(`path '${path}' is outside the sandbox`, true);
	return current;
}
