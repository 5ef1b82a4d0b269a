// ES module entry of moleculer-ws-browser: runs the single-file websocket.js (the wasm module is
// inside it; it defines the globals) and re-exports the two functions.
import "./websocket.js";

export const MoleculerWebsocket = globalThis.MoleculerWebsocket;
export const MoleculerHttpClient = globalThis.MoleculerHttpClient;
