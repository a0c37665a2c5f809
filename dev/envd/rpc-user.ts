// Who an RPC runs as. envd's authn middleware (permissions.AuthenticateUsername)
// reads the username from `Authorization: Basic base64("<user>:")`, which the
// SDK sends when a call names a user; without it, envd's default user.

import { Code, ConnectError } from "@connectrpc/connect";
import { DEFAULT_USER, USERS } from "./paths.ts";

export interface RpcUser {
	name: string;
	/** Home directory, a sandbox path. */
	home: string;
}

/** The user an RPC names, or the default; an unknown one is Unauthenticated, as envd's authn answers. */
export function rpcUser(authorization: string | null): RpcUser {
	const name = basicUsername(authorization) ?? DEFAULT_USER;
	const home = USERS.get(name);
	if (home === undefined) throw new ConnectError(`invalid username: '${name}'`, Code.Unauthenticated);
	return { name, home };
}

/** The username of a Basic Authorization header (Go's Request.BasicAuth), or undefined. */
export function basicUsername(authorization: string | null): string | undefined {
	if (authorization === null) return undefined;
	const match = /^basic (.*)$/i.exec(authorization);
	if (match === null) return undefined;
	const decoded = Buffer.from(match[1] ?? "", "base64").toString("utf8");
	const colon = decoded.indexOf(":");
	return colon < 0 ? undefined : decoded.slice(0, colon);
}
