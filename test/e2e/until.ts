/**
 * Polls `probe` until it gives something other than undefined or false, and
 * returns that; fails after `timeoutMs`. Tests wait for what they count with
 * it, never for a fixed time.
 */
export async function until<T>(
	what: string,
	probe: () => T | undefined | false | Promise<T | undefined | false>,
	timeoutMs = 10_000,
	pollMs = 20,
): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (value !== undefined && value !== false) return value;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, pollMs));
	}
}
