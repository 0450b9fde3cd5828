import { defineConfig } from "vite";

export default defineConfig({
  // The package finds its wasm and weights with `new URL(..., import.meta.url)`.
  // Vite 7 and older pre-bundle dependencies for the dev server into
  // node_modules/.vite/deps, where those files do not exist (the wasm request
  // then gets index.html back); excluding the package serves it as published.
  // Vite 8 handles it either way; `vite build` never needed it.
  optimizeDeps: { exclude: ["realdenoise"] },
});
