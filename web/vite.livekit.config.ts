// The widget's video avatar with LiveKit: dist/widget-livekit.js, a classic script that sets
// `window.AdamVideoAvatar`. widget.js loads it only when a dealership's avatar is a video one
// (an IIFE build cannot split a dynamic import into a chunk, and a cross-origin module
// import would need CORS), so the widget itself stays small.
import { defineConfig } from "vite";

export default defineConfig({
  publicDir: false,
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    target: "es2020",
    outDir: "dist",
    // The video avatar with livekit-client is about 577 kB; it is loaded only when needed.
    chunkSizeWarningLimit: 600,
    emptyOutDir: false,
    lib: {
      entry: "src/voice/video-avatar.ts",
      name: "AdamVideoAvatar",
      formats: ["iife"],
      fileName: () => "widget-livekit.js",
    },
  },
});
