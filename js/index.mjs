// ES module entry of moleculer-ws-browser. It loads the classic websocket.js (which defines the
// globals) with this module's folder as the place of pkg/, and re-exports the two functions.
if (!globalThis.MOLECULER_WS_BASE) {
  globalThis.MOLECULER_WS_BASE = new URL("./", import.meta.url).href;
}
await import("./websocket.js");

export const MoleculerWebsocket = globalThis.MoleculerWebsocket;
export const MoleculerHttpClient = globalThis.MoleculerHttpClient;
