/**
 * Text from outside (a client's host, a control plane's message) that is
 * echoed in an error: printable ASCII only, and short.
 */
export function excerpt(text: string, maxLength: number): string {
	// Control characters (newlines, escapes) become spaces; other non-ASCII, "?".
	const printable = text
		.replace(/[\p{Cc}]/gu, " ")
		.replace(/[^\x20-\x7e]/g, "?")
		.trim();
	return printable.length > maxLength ? `${printable.slice(0, maxLength)}…` : printable;
}
