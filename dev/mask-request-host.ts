// E2B's check of a sandbox's network.maskRequestHost at create
// (validateNetworkConfig in packages/api/internal/handlers/sandbox_create.go):
// the host part, port optional, must pass idna.Display.ToASCII and be ASCII
// already. The port part is not checked, which is where `${PORT}` goes.

/** Go's net.SplitHostPort, with "missing port" meaning the whole is the host (splitHostPortOptional). */
function hostPart(hostport: string): string | undefined {
	const colon = hostport.lastIndexOf(":");
	if (colon < 0) return hostport;
	let host: string;
	let from = 0;
	let closeFrom = 0;
	if (hostport.startsWith("[")) {
		const end = hostport.indexOf("]");
		if (end < 0) return undefined;
		if (end + 1 === hostport.length) return hostport;
		if (end + 1 !== colon) return hostport[end + 1] === ":" ? undefined : hostport;
		host = hostport.slice(1, end);
		from = 1;
		closeFrom = end + 1;
	} else {
		host = hostport.slice(0, colon);
		if (host.includes(":")) return undefined;
	}
	if (hostport.indexOf("[", from) >= 0 || hostport.indexOf("]", closeFrom) >= 0) return undefined;
	return host;
}

function isAscii(char: string): boolean {
	return (char.codePointAt(0) ?? 0) < 0x80;
}

/**
 * idna.Display (UTS 46 with STD3 rules and hyphen checks) as it treats
 * ASCII: letters, digits, hyphens and dots, no label starting or ending with
 * a hyphen. Non-ASCII letters pass here; E2B then refuses them as not ASCII.
 */
function idnaDisplayAccepts(hostname: string): boolean {
	for (const char of hostname) {
		if (!isAscii(char)) continue;
		if (!/[A-Za-z0-9.-]/.test(char)) return false;
	}
	return hostname.split(".").every((label) => !label.startsWith("-") && !label.endsWith("-"));
}

/** E2B's client message for a mask it refuses (400), or undefined for one it takes. */
export function maskRequestHostProblem(mask: string): string | undefined {
	const hostname = hostPart(mask);
	if (hostname === undefined || !idnaDisplayAccepts(hostname)) return `mask request host is not valid: ${mask}`;
	if (![...hostname].every(isAscii)) {
		return `mask request host '${hostname}' is not ASCII. Please use ASCII characters only.`;
	}
	return undefined;
}
