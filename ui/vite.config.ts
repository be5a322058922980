// Built with `npm run build:ui` (vite build ui): ui/ is the root, the output goes to ui/dist,
// which api/ui.ts serves at /. `npx vite ui` serves it with hot reload and sends /api to a
// Baton on 127.0.0.1:8080.
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [preact()],
  base: "/",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", chunkSizeWarningLimit: 600 },
  server: { proxy: { "/api": { target: "http://127.0.0.1:8080", changeOrigin: false } } },
});
