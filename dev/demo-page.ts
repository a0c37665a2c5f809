// The demo app's landing page. Everything it loads is same-origin and host-relative,
// so it works unchanged behind the Worker's per-sandbox host.

function escapeHtml(text: string): string {
	return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function renderDemoPage(sandboxId: string, count: number): string {
	const id = escapeHtml(sandboxId);
	return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox ${id}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  code, output { font-family: ui-monospace, monospace; }
  section { border: 1px solid #ccc; border-radius: 6px; padding: 0.5rem 1rem; margin: 1rem 0; }
</style>
</head>
<body>
<h1>Sandbox <code>${id}</code></h1>
<section>
  <h2>Counter</h2>
  <p>Page views and clicks, kept by the sandbox (it survives pause and resume):
    <output id="count">${count}</output></p>
  <button id="inc" type="button">Count +1</button>
</section>
<section>
  <h2>WebSocket echo</h2>
  <p>Status: <output id="ws-status">connecting</output></p>
  <form id="ws-form"><input id="ws-input" value="hello" autocomplete="off"> <button>Send</button></form>
  <p>Echo: <output id="ws-echo"></output></p>
</section>
<section>
  <h2>Server-Sent Events clock</h2>
  <p><output id="clock">waiting…</output></p>
</section>
<script>
  const $ = (id) => document.getElementById(id);
  $("inc").addEventListener("click", async () => {
    const res = await fetch("/count", { method: "POST" });
    $("count").textContent = (await res.json()).count;
  });

  // The WebSocket closes when the sandbox pauses. It reconnects with a growing
  // delay, and the first reconnect through the edge wakes the sandbox again.
  const wsUrl = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  const WS_RETRY_FIRST_MS = 500;
  const WS_RETRY_MAX_MS = 30000;
  let ws;
  let wsRetries = 0;
  let wsRetryTimer;
  function wsConnect() {
    clearTimeout(wsRetryTimer);
    wsRetryTimer = undefined;
    $("ws-status").textContent = wsRetries === 0 ? "connecting" : "reconnecting (attempt " + wsRetries + ")";
    ws = new WebSocket(wsUrl);
    ws.onopen = () => {
      $("ws-status").textContent = wsRetries === 0 ? "open" : "open again after " + wsRetries + " attempt(s)";
      wsRetries = 0;
    };
    ws.onmessage = (e) => { $("ws-echo").textContent = e.data; };
    ws.onclose = (e) => {
      const delay = Math.min(WS_RETRY_MAX_MS, WS_RETRY_FIRST_MS * 2 ** wsRetries);
      wsRetries += 1;
      $("ws-status").textContent = "closed (code " + e.code + "; did the sandbox pause?), " +
        "reconnecting in " + (delay / 1000) + " s, which wakes it";
      wsRetryTimer = setTimeout(wsConnect, delay);
    };
  }
  wsConnect();
  $("ws-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (ws.readyState === WebSocket.OPEN) ws.send($("ws-input").value);
    else if (wsRetryTimer !== undefined) wsConnect(); // now, rather than after the delay
  });

  // EventSource reconnects by itself (after about 3 s), which wakes the sandbox too.
  const events = new EventSource("/events");
  events.onopen = () => { $("clock").textContent = "connected, waiting for the next tick…"; };
  events.onmessage = (e) => { $("clock").textContent = e.data; };
  events.onerror = () => { $("clock").textContent = "disconnected (did the sandbox pause?), reconnecting…"; };
</script>
</body>
</html>
`;
}
