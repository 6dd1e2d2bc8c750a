// The embeddable widget: one self-contained script (dist/widget.js) that dealerships paste
// into their own sites. Its styles are inlined into its Shadow DOM, so no CSS file is emitted.
import { defineConfig } from "vite";

export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  publicDir: false,
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    target: "es2020",
    outDir: "dist",
    emptyOutDir: false,
    lib: {
      entry: "src/widget/main.tsx",
      name: "AdamWidget",
      formats: ["iife"],
      fileName: () => "widget.js",
    },
  },
});
