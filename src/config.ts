/**
 * The Worker's configuration: every setting is declared once, in the table
 * of src/config/settings.ts, from which src/config/parse.ts reads them and
 * scripts/config-docs.ts writes docs/configuration.md.
 */
export { configFrom, defaults, parseConfig } from "./config/parse.ts";
export type { RawSettings } from "./config/read.ts";
export {
	type Config,
	ConfigError,
	type ControlPlaneAuth,
	type ControlPlaneProtocol,
	type Environment,
	type ServerTiming,
} from "./config/types.ts";
