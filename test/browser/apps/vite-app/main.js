// A tiny app for a Vite dev server behind the edge. It shows message.js's
// text and takes changes to it by HMR. It tells whether the HMR WebSocket
// works by a round trip over it: sandbox:ping, which the test's plugin
// answers with sandbox:pong. (Vite's client queues the ping until the socket
// is open, so this holds even if vite:ws:connect fired before this module ran.)
import { message } from "./message.js";

const shown = document.querySelector("#message");
const hmr = document.querySelector("#hmr");
shown.textContent = message;

if (import.meta.hot) {
	import.meta.hot.accept("./message.js", (next) => {
		if (next) shown.textContent = next.message;
	});
	import.meta.hot.on("vite:ws:connect", () => {
		if (hmr.textContent === "not connected") hmr.textContent = "socket open";
	});
	import.meta.hot.on("vite:ws:disconnect", () => {
		hmr.textContent = "disconnected";
	});
	import.meta.hot.on("sandbox:pong", () => {
		hmr.textContent = "connected";
	});
	import.meta.hot.send("sandbox:ping", {});
}
