// LiveKit for the widget's video avatar: dist/widget-livekit.js, a classic script that sets
// `window.AdamLiveKit`. widget.js loads it only when a dealership's avatar is a video one
// (an IIFE build cannot split a dynamic import into a chunk, and a cross-origin module
// import would need CORS), so the widget itself stays small.
import { defineConfig } from "vite";

export default defineConfig({
  publicDir: false,
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    target: "es2020",
    outDir: "dist",
    // livekit-client (the video avatar) is about 575 kB; it is loaded only when needed.
    chunkSizeWarningLimit: 600,
    emptyOutDir: false,
    lib: {
      entry: "src/voice/livekit.ts",
      name: "AdamLiveKit",
      formats: ["iife"],
      fileName: () => "widget-livekit.js",
    },
  },
});
