/** One line of text. The bridge never passes it CATALOG_SECRET or a Redis password. */
export type Log = (line: string) => void;

/** For operators: a timestamp and the program's name on every line, to stdout. */
export const consoleLog: Log = (line) => {
	console.log(`${new Date().toISOString()} catalog-bridge: ${line}`);
};
