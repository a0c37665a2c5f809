import type { SandboxTarget } from "../routing.ts";

/**
 * Where a waiting page asks how the wake stands, on the sandbox's own host
 * (so the page needs nothing but 'self'). RFC 8615's well-known namespace,
 * the one part of a host's paths an app is not expected to own.
 */
export const wakeStatusPath = "/.well-known/sandbox-edge/wake";

/**
 * A browser opening a page (not fetch/XHR, not a WebSocket, not an
 * EventSource, not an API or gRPC client): only it can be shown a page
 * instead of waiting, and only it reloads on its own when told.
 */
export function isNavigation(request: Request): boolean {
	return (
		request.method === "GET" &&
		request.headers.get("sec-fetch-mode") === "navigate" &&
		(request.headers.get("accept") ?? "").includes("text/html")
	);
}

/**
 * The page a navigation gets while its sandbox takes long to wake. It asks
 * `wakeStatusPath` every half second, shows the phase it is in, loads the
 * app as soon as the sandbox is ready, and shows the error if the wake
 * fails. No third-party assets: its script and style are inline, allowed by
 * a nonce under a CSP that allows nothing else but requests to itself.
 */
export function waitingPage(target: SandboxTarget): Response {
	const nonce = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
	const headers = new Headers({
		"content-type": "text/html; charset=utf-8",
		"cache-control": "no-store",
		"retry-after": "1",
		"x-content-type-options": "nosniff",
		"content-security-policy": [
			"default-src 'none'",
			`script-src 'nonce-${nonce}'`,
			`style-src 'nonce-${nonce}'`,
			"connect-src 'self'",
			"base-uri 'none'",
			"form-action 'none'",
			"frame-ancestors 'none'",
		].join("; "),
		"referrer-policy": "no-referrer",
	});
	return new Response(page(target, nonce), { status: 503, headers });
}

function page(target: SandboxTarget, nonce: string): string {
	// The sandbox ID and port are checked ([a-z0-9] and digits) before they get here.
	return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Waking sandbox ${target.sandboxId}</title>
<style nonce="${nonce}">
body{font:16px/1.5 system-ui,sans-serif;margin:0;min-height:100vh;display:grid;place-items:center;background:#f6f7f9;color:#1d2330}
main{max-width:32rem;padding:2rem;text-align:center}
h1{font-size:1.4rem;margin:0 0 .5rem}
#spinner{width:2.5rem;height:2.5rem;margin:0 auto 1.25rem;border:4px solid #d5d9e0;border-top-color:#3b6fd8;border-radius:50%;animation:spin 1s linear infinite}
@keyframes spin{to{transform:rotate(360deg)}}
#phase{color:#4a5568}
code{font-size:.9em}
.failed #spinner{display:none}
.failed h1{color:#b42318}
button{margin-top:1rem;font:inherit;padding:.4rem 1rem;border-radius:.4rem;border:1px solid #9aa4b2;background:#fff;cursor:pointer}
button[hidden]{display:none}
</style>
</head>
<body>
<main id="main" aria-live="polite">
<div id="spinner" role="progressbar" aria-label="Waking"></div>
<h1 id="title">Waking sandbox <code>${target.sandboxId}</code></h1>
<p id="phase">It was paused; it is being resumed. This page loads the app as soon as it is ready.</p>
<button id="retry" type="button" hidden>Try again</button>
</main>
<script nonce="${nonce}">
(() => {
	const started = Date.now();
	const main = document.getElementById("main");
	const title = document.getElementById("title");
	const phase = document.getElementById("phase");
	const retry = document.getElementById("retry");
	retry.addEventListener("click", () => location.reload());
	const seconds = () => Math.round((Date.now() - started) / 1000);
	async function poll() {
		let status;
		try {
			const response = await fetch(${JSON.stringify(wakeStatusPath)}, { cache: "no-store", headers: { accept: "application/json" } });
			status = await response.json();
		} catch {
			phase.textContent = "Waiting for the edge to answer (" + seconds() + " s)…";
			return setTimeout(poll, 1000);
		}
		if (status.phase === "ready" || status.phase === "idle") {
			phase.textContent = "Ready: loading the app…";
			return location.reload();
		}
		if (status.phase === "failed") {
			main.className = "failed";
			title.textContent = "The sandbox could not be woken";
			phase.textContent = status.message + " (" + status.reason + ")";
			retry.hidden = false;
			return;
		}
		phase.textContent = "Resuming the sandbox: " + Math.round(status.forMs / 1000) + " s so far. This page loads the app as soon as it is ready.";
		setTimeout(poll, 500);
	}
	setTimeout(poll, 500);
})();
</script>
</body>
</html>
`;
}
