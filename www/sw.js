// Service worker: keeps the page, the realdenoise package (wasm, JS) and the
// weights in the Cache API, so after the first visit everything works offline.
// vendor/build.js (written by `make`) names the package files and a build id
// that changes whenever they change; a new id installs a fresh cache.
importScripts("./vendor/build.js");

const CACHE = `realdenoise-${self.BUILD.id}`;
const SHELL = ["./", "app.css", "app.js", "engine.js", "compare.js", "imagecheck.js", "icon.svg", "manifest.webmanifest"];
const VENDOR = self.BUILD.files;
const scope = new URL(self.registration.scope);

async function tell(message) {
  for (const client of await self.clients.matchAll({ includeUncontrolled: true })) client.postMessage(message);
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const all = [...SHELL, ...VENDOR];
    let done = 0;
    await Promise.all(all.map(async (path) => {
      const response = await fetch(new Request(path, { cache: "no-cache" }));
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      await cache.put(path, response);
      done += 1;
      await tell({ type: "precache", done, total: all.length });
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      // (the package's own weights cache, realdenoise-weights-<version>, is the package's)
      if (name.startsWith("realdenoise-") && !name.startsWith("realdenoise-weights-") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

// The package files change only with the build id: cache first. The page
// itself: network first (so edits show at once), the cache when offline.
self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  const path = url.pathname.slice(scope.pathname.length);
  if (path.startsWith("vendor/")) event.respondWith(cacheFirst(request));
  else event.respondWith(networkFirst(request, request.mode === "navigate" || path === "" || path === "index.html" ? "./" : request));
});

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(request, { ignoreVary: true });
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) await cache.put(request, response.clone());
  return response;
}

async function networkFirst(request, key) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key, response.clone());
    return response;
  } catch (error) {
    const hit = await cache.match(key, { ignoreVary: true, ignoreSearch: true });
    if (hit) return hit;
    throw error;
  }
}
