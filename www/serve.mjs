// Serves the demo page (this folder) on 127.0.0.1 with `sirv`, a small,
// maintained static server: correct MIME types (application/wasm), ETags,
// precompressed .gz files. Everything is static; nothing is processed here.
// The Content-Security-Policy is also sent as a header, so it binds the
// package's worker and the service worker too, not only the page.
//   node www/serve.mjs            PORT=8081 node www/serve.mjs
import { createServer } from "node:http";
import sirv from "sirv";

export const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "connect-src 'self'",
  "img-src 'self' blob: data:",
  "style-src 'self'",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const HEADERS = {
  "Content-Security-Policy": CSP,
  "Referrer-Policy": "no-referrer",
  "X-Content-Type-Options": "nosniff",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
};

// Only the site is served: not the server itself, its npm files or dotfiles.
const PRIVATE = /^\/(node_modules\/|package(-lock)?\.json$|serve\.mjs$|README\.md$)|\/\./;

export function startServer({ port = 8080, host = "127.0.0.1", root = import.meta.dirname } = {}) {
  const files = sirv(root, {
    dev: true, // re-read from disk: `make pkg` may rebuild while serving
    etag: true,
    gzip: true,
    setHeaders: (response) => {
      for (const [name, value] of Object.entries(HEADERS)) response.setHeader(name, value);
    },
  });
  const notFound = (response) => {
    for (const [name, value] of Object.entries(HEADERS)) response.setHeader(name, value);
    response.statusCode = 404;
    response.setHeader("Content-Type", "text/plain; charset=utf-8");
    response.end("not found");
  };
  const server = createServer((request, response) => {
    let path;
    try {
      path = decodeURIComponent(new URL(request.url, "http://x").pathname);
    } catch {
      response.statusCode = 400;
      return response.end();
    }
    if (PRIVATE.test(path)) return notFound(response);
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.statusCode = 405;
      response.setHeader("Allow", "GET, HEAD");
      return response.end();
    }
    files(request, response, () => notFound(response));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const { port: bound } = server.address();
      resolve({ url: `http://${host}:${bound}/`, close: () => new Promise((done) => server.close(done)), server });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 8080);
  try {
    const { url } = await startServer({ port });
    console.log(`realdenoise demo: ${url}   (Ctrl+C stops it)`);
  } catch (error) {
    console.error(`cannot serve on 127.0.0.1:${port}: ${error.message}${error.code === "EADDRINUSE" ? " (try PORT=8081 make demo)" : ""}`);
    process.exit(1);
  }
}
