// The pages Adam serves from web/dist: the conversation page (/) and the admin pages
// (/admin/). The embeddable widget has its own build (vite.widget.config.ts).
import { resolve } from "node:path";
import { defineConfig } from "vite";

// `npm run dev` proxies the API (and the realtime WebSocket) to a running Adam.
const adam = process.env.ADAM_DEV_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    target: "es2022",
    outDir: "dist",
    // The video avatar with livekit-client is about 577 kB; it is loaded only when needed.
    chunkSizeWarningLimit: 600,
    emptyOutDir: true,
    // Adam's Content-Security-Policy allows scripts from 'self' only: no inline polyfill.
    modulePreload: { polyfill: false },
    // The capture worklet must stay a file: CSP blocks worklets from data: URLs.
    assetsInlineLimit: (file) => (file.endsWith("capture-worklet.js") ? false : undefined),
    rollupOptions: {
      input: {
        conversation: resolve(import.meta.dirname, "index.html"),
        admin: resolve(import.meta.dirname, "admin/index.html"),
      },
    },
  },
  server: {
    proxy: {
      "/v1": { target: adam, ws: true, changeOrigin: false },
      "/readyz": adam,
    },
  },
});
