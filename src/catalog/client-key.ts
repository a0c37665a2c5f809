/**
 * The unit a per-client budget counts: the address for IPv4, and the /64 for
 * IPv6. An IPv6 subscriber is routinely given a whole /64 (RFC 6177; it is
 * what SLAAC needs), so one client can send from 2^64 addresses: keyed on the
 * address, each would get a budget of its own. A /64 shared by several
 * clients (a hosting provider's) shares one budget; that errs on the side of
 * the operator, who pays for the resumes. IPv4 addresses are scarce enough
 * that an address is a client (a NAT's users share one, as they always have).
 */
export function clientBudgetKey(address: string): string {
	if (!address.includes(":")) return address;
	const hextets = expandIpv6(address);
	if (hextets === undefined) return address;
	// An IPv4-mapped address (::ffff:a.b.c.d) is an IPv4 client.
	if (hextets.slice(0, 5).every((h) => h === 0) && hextets[5] === 0xffff) {
		const [high = 0, low = 0] = hextets.slice(6);
		return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
	}
	return `${hextets
		.slice(0, 4)
		.map((h) => h.toString(16))
		.join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, or undefined when it is not one. */
function expandIpv6(address: string): number[] | undefined {
	let text = address.toLowerCase();
	const zone = text.indexOf("%");
	if (zone !== -1) text = text.slice(0, zone);
	// A trailing dotted quad stands for the last two groups.
	const dotted = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
	if (dotted !== null) {
		const octets = dotted.slice(2).map(Number);
		if (octets.some((o) => o > 255)) return undefined;
		const [a = 0, b = 0, c = 0, d = 0] = octets;
		text = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
	}
	const halves = text.split("::");
	if (halves.length > 2) return undefined;
	const parse = (part: string) => (part === "" ? [] : part.split(":"));
	const head = parse(halves[0] ?? "");
	const tail = halves.length === 2 ? parse(halves[1] ?? "") : [];
	const missing = 8 - head.length - tail.length;
	if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
	const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...tail];
	if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
	return groups.map((g) => Number.parseInt(g, 16));
}
