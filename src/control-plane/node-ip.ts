const ipv4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const ipv6 = /^[0-9a-f:.]+$/i;

/**
 * The control plane's `orchestrator_ip` is spliced into the node origin, so
 * anything but an IP literal (a host, a path, credentials) is refused rather
 * than let a confused or hostile control plane point us elsewhere.
 */
export function isNodeIp(text: string): boolean {
	if (ipv4.test(text)) return true;
	if (!ipv6.test(text) || !text.includes(":")) return false;
	try {
		return new URL(`http://[${text}]/`).hostname.length > 2;
	} catch {
		return false;
	}
}
