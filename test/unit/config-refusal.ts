import { expect } from "vitest";
import { ConfigError, parseConfig, type RawSettings } from "../../src/config.ts";

/** The ConfigError that parsing `raw` throws; fails the test if none is thrown. */
export function configErrorFor(raw: RawSettings): ConfigError {
	try {
		parseConfig(raw);
	} catch (error) {
		expect(error).toBeInstanceOf(ConfigError);
		return error as ConfigError;
	}
	throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
}
