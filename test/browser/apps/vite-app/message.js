// The text the page shows. The browser test rewrites this file in its own
// copy of the app, and the page must take the new text by HMR, unreloaded.
export const message = "Hello from Vite in a sandbox";
