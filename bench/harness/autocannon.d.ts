// The part of autocannon's API the bench uses (the package ships no types).
declare module "autocannon" {
	import type { EventEmitter } from "node:events";

	interface RawRequest {
		method?: string;
		path?: string;
		headers?: Record<string, string>;
		body?: string | Buffer;
	}

	interface RequestStep extends RawRequest {
		setupRequest?: (request: RawRequest, context: Record<string, unknown>) => RawRequest;
	}

	interface Options {
		url: string;
		connections?: number;
		amount?: number;
		duration?: number;
		pipelining?: number;
		timeout?: number;
		method?: string;
		headers?: Record<string, string>;
		requests?: RequestStep[];
		excludeErrorStats?: boolean;
	}

	interface Histogram {
		p50: number;
		p99: number;
		average: number;
		max: number;
	}

	interface Result {
		requests: Histogram & { total: number; sent: number };
		latency: Histogram;
		duration: number;
		errors: number;
		timeouts: number;
		non2xx: number;
		resets: number;
		statusCodeStats?: Record<string, { count: number }>;
	}

	interface Instance extends EventEmitter {
		stop(): void;
	}

	function autocannon(options: Options, callback: (error: Error | null, result: Result) => void): Instance;
	export default autocannon;
}
