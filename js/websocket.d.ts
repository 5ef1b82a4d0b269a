// Types for moleculer-ws-browser: the MoleculerWebsocket of Moleculer-Java's websocket.js,
// plus MoleculerHttpClient for REST calls.

/** Where a channel is: `idle` before connect(), `waiting` between reconnect attempts. */
export type ChannelState = "idle" | "connecting" | "open" | "waiting" | "stopped";

export interface CloseInfo {
  /** The close code, or null when the connection broke without a close frame. */
  code: number | null;
  reason: string;
  /** Whether the client will reconnect (false after disconnect() or a stop). */
  willReconnect: boolean;
}

export interface RecoveryInfo {
  /** Whether the messages missed while away are replayed (false on the first connection). */
  recovered: boolean;
  /** How many messages are replayed. */
  replayed: number;
}

export interface MoleculerWebsocketOptions {
  /** Heartbeat interval in ms (default 6000); 0 turns the heartbeat off. */
  heartbeatInterval?: number;
  /** How long a `!` may stay unanswered, in ms (default 1000); 0 turns the heartbeat off. */
  heartbeatTimeout?: number;
  /** Delay before the first reconnect attempt, in ms (default 3000, as the original). */
  reconnectDelay?: number;
  /** Upper bound of the exponential backoff, in ms (default = reconnectDelay: a fixed delay). */
  maxReconnectDelay?: number;
  /**
   * Randomise each reconnect delay between reconnectDelay and twice it (default true, so that
   * pages that lost the gateway together do not come back in the same instant); false gives
   * the original's exact delays.
   */
  jitter?: boolean;
  /**
   * Asked before every connection attempt for a token (or a promise of one), sent in the URL's
   * query as `tokenQueryParam` (a browser WebSocket sends no headers); null or undefined sends
   * none. A rejection fails the attempt, and the reconnect policy goes on.
   */
  tokenProvider?: () => string | null | undefined | Promise<string | null | undefined>;
  /** The query parameter of the token (default "token"). */
  tokenQueryParam?: string;
  /** How long an attempt may take before it counts as failed, in ms (default 10000; 0 = none). */
  connectTimeout?: number;
  /** Log to the console. */
  debug?: boolean;
  /**
   * Message recovery (README "Message recovery"; needs a moleculer-ws gateway): after a
   * reconnect, the messages missed while away arrive once each and in order before live ones.
   * `onopen` then waits for the gateway's answer and gets `info`; `onresync` says when
   * messages may have been lost. Default false: the original wire.
   */
  recover?: boolean;
  /**
   * What carries the pushes (README "Through proxies that refuse WebSockets"; the event
   * stream needs a moleculer-ws gateway): "websocket" (default, the original wire), "sse" (an
   * event stream, Server-Sent Events over plain HTTP, through proxies that refuse WebSocket
   * upgrades), or "auto" (a WebSocket first; after 2 failed opens an event stream, and the
   * WebSocket again after 5 minutes on it). Callbacks, state and stats are the same on both;
   * on an event stream the heartbeat is the gateway's keep-alive.
   */
  transport?: "websocket" | "sse" | "auto";
  /**
   * One socket for all the tabs of this origin that open this channel with `shared: true`
   * (README "One socket for all tabs"): one tab holds it, the others receive through it, each
   * with its own callbacks, state() and stats(); when that tab goes, the next one connects at
   * once. Needs Web Locks (https or localhost) and BroadcastChannel, else one socket per tab.
   * In the other tabs `onopen` gets `null` for the browser's event. Default false.
   */
  shared?: boolean;
  /**
   * The socket opened. With `recover`, `info` says whether the missed messages are replayed
   * (`recovered`, false on the first connection) and how many; without it, `info` is undefined.
   */
  onopen?: (evt: Event | null, info?: RecoveryInfo) => void;
  /** With `recover`: messages may have been missed (gateway restart, another gateway, outage
   * longer than the history): refetch the state over REST. */
  onresync?: () => void;
  onreconnect?: () => void;
  onclose?: (info: CloseInfo) => void;
  onerror?: (err: Error) => void;
  onstatechange?: (state: ChannelState) => void;
}

export interface ChannelStats {
  reconnects: number;
  failedAttempts: number;
  /** Total time without a connection, in ms. */
  downtime: number;
  /** Last heartbeat round trip in ms, null before the first one. */
  rtt: number | null;
  messagesReceived: number;
}

/** The events of `on(event, fn)`, each with the arguments of its option callback. */
export interface ChannelEvents {
  message: (msg: string) => void;
  open: (evt: Event | null, info?: RecoveryInfo) => void;
  close: (info: CloseInfo) => void;
  error: (err: Error) => void;
  statechange: (state: ChannelState) => void;
  resync: () => void;
  reconnect: () => void;
}

export interface MoleculerWebsocketChannel {
  /** The channel as given (default "ws/common"). */
  readonly channel: string;
  connect(): void;
  disconnect(): void;
  state(): ChannelState;
  stats(): ChannelStats;
  /** Resolves when open; rejects on timeout or when the channel stops. */
  ready(timeoutMs?: number): Promise<void>;
  /** Adds a listener (besides the options' callbacks); throws a TypeError for an unknown event. */
  on<E extends keyof ChannelEvents>(event: E, fn: ChannelEvents[E]): this;
  /** Removes a listener, or all of the event's without `fn`. */
  off<E extends keyof ChannelEvents>(event: E, fn?: ChannelEvents[E]): this;
  /** With `shared`: whether this tab holds the socket. Without it: whether its connection exists (connect() was called and the module has started). */
  isLeader(): boolean;
}

export declare function MoleculerWebsocket(
  channel: string | null | undefined,
  handler: (msg: string) => void,
  opts?: MoleculerWebsocketOptions,
): MoleculerWebsocketChannel;

/** A gateway error: the Moleculer error body's fields plus the HTTP status. */
export interface MoleculerHttpError extends Error {
  status: number;
  code: number;
  type: string | null;
  data: unknown;
  body: unknown;
}

export interface MoleculerHttpClientOptions {
  /** Base URL for relative paths (default: the page URL). */
  baseUrl?: string;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** Give up a request after this many ms (rejects with an Error named "TimeoutError"). Default: none. */
  timeout?: number;
  /** Asked before every request for a bearer token (or a promise of one): `Authorization: Bearer <token>`. */
  tokenProvider?: () => string | null | undefined | Promise<string | null | undefined>;
}

/** Per request: headers (over the client's), an AbortSignal, a timeout in ms (over the client's). */
export interface MoleculerRequestInit {
  headers?: Record<string, string>;
  signal?: AbortSignal;
  timeout?: number;
}

type Query = Record<string, string | number | boolean | Array<string | number | boolean>>;

export interface MoleculerHttpClientApi {
  get<T = unknown>(url: string, query?: Query | null, init?: MoleculerRequestInit): Promise<T>;
  options<T = unknown>(url: string, query?: Query | null, init?: MoleculerRequestInit): Promise<T>;
  head(url: string, query?: Query | null, init?: MoleculerRequestInit): Promise<null>;
  post<T = unknown>(url: string, body?: unknown, init?: MoleculerRequestInit): Promise<T>;
  put<T = unknown>(url: string, body?: unknown, init?: MoleculerRequestInit): Promise<T>;
  patch<T = unknown>(url: string, body?: unknown, init?: MoleculerRequestInit): Promise<T>;
  delete<T = unknown>(url: string, body?: unknown, init?: MoleculerRequestInit): Promise<T>;
}

export declare function MoleculerHttpClient(options?: MoleculerHttpClientOptions): MoleculerHttpClientApi;

declare global {
  function MoleculerWebsocket(
    channel: string | null | undefined,
    handler: (msg: string) => void,
    opts?: MoleculerWebsocketOptions,
  ): MoleculerWebsocketChannel;
  function MoleculerHttpClient(options?: MoleculerHttpClientOptions): MoleculerHttpClientApi;
  /** The split build only: where split/websocket.js fetches websocket.wasm (default: next to the script). */
  var MOLECULER_WS_BASE: string | undefined;
}
