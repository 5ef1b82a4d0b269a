/*!
 * moleculer-ws browser client: a drop-in for the websocket.js of Moleculer-Java.
 *
 *   var ws = MoleculerWebsocket("ws/chat", function (msg) { ... }, { heartbeatInterval: 6000 });
 *   ws.connect(); ws.disconnect(); ws.channel
 *
 * This classic script defines MoleculerWebsocket and MoleculerHttpClient synchronously and starts
 * the WebAssembly session core (inside this file) in the background; connect() called before it
 * has started is queued. The heartbeat, reconnect and close logic run in the wasm module: the
 * same Rust session core as the Rust client. Needs WebAssembly and DecompressionStream; under a
 * Content-Security-Policy, script-src 'wasm-unsafe-eval' (README "The browser client").
 */
(function (root) {
  "use strict";

  // The wasm-bindgen glue (it defines wasm_bindgen) and the wasm module: put here by
  // scripts/bundle-browser.mjs. WASM is the module, gzip then base64, in the single file, and
  // empty in the split build, which fetches websocket.wasm from next to the script.
  /*@glue*/
  var WASM = "@WASM@";

  var doc = root.document;
  var script = doc && doc.currentScript;
  var base = root.MOLECULER_WS_BASE ||
    (script && script.src) || (root.location && root.location.href);
  var modulePromise = null;
  var live = [];

  // The inlined module, unpacked by the browser's own gzip.
  function inflate() {
    if (typeof DecompressionStream !== "function") {
      throw new Error("this browser has no DecompressionStream (use the split build)");
    }
    var bin = atob(WASM), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return new Response(new Blob([bytes]).stream()
      .pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
  }

  function loadModule() {
    if (!modulePromise) {
      modulePromise = new Promise(function (resolve) {
        if (typeof WebAssembly !== "object") { throw new Error("this browser has no WebAssembly"); }
        resolve(WASM ? inflate() : new URL("websocket.wasm", base));
      }).then(function (source) {
        return wasm_bindgen({ module_or_path: source });
      }).then(function () { return wasm_bindgen; }, function (err) {
        var why = err && err.message ? err.message : String(err);
        throw new Error("moleculer-ws: the WebAssembly session core cannot start: " + why +
          (/unsafe-eval|CSP|Content.Security/i.test(why)
            ? " (the page's Content-Security-Policy must allow script-src 'wasm-unsafe-eval')" : ""));
      });
    }
    return modulePromise;
  }

  function pageUrl() { return root.location ? root.location.href : base; }

  // Resolved like a link against the page; http -> ws, https -> wss.
  function socketUrl(channel) {
    return new URL(channel, pageUrl()).href.replace(/^http/, "ws");
  }

  function probeAll() {
    for (var i = 0; i < live.length; i++) { live[i]._probe(); }
  }
  if (doc && root.addEventListener) {
    doc.addEventListener("visibilitychange", function () {
      if (doc.visibilityState === "visible") { probeAll(); }
    });
    root.addEventListener("online", probeAll);
    root.addEventListener("pageshow", function (e) { if (e.persisted) { probeAll(); } });
  }

  function MoleculerWebsocket(channel, handler, opts) {
    if (!channel) { channel = "ws/common"; }
    opts = opts || {};
    var conn = null;        // the wasm Connection, once loaded
    var wanted = false;     // connect() was called and disconnect() was not
    var failed = null;      // the load error, if the module could not load
    var waiters = [];

    function settle(state) {
      var keep = [];
      for (var i = 0; i < waiters.length; i++) {
        var w = waiters[i];
        if (state === "open") { clearTimeout(w.timer); w.resolve(); }
        else if (state === "stopped") { clearTimeout(w.timer); w.reject(new Error("the channel was stopped")); }
        else { keep.push(w); }
      }
      waiters = keep;
    }

    // Callbacks are read from opts at call time, as the original does.
    var hooks = {
      handler: function (msg) { if (handler) { handler(msg); } },
      onopen: function (evt, info) { if (opts.onopen) { opts.onopen(evt, info); } },
      onresync: function () { if (opts.onresync) { opts.onresync(); } },
      onreconnect: function () { if (opts.onreconnect) { opts.onreconnect(); } },
      onclose: function (info) { if (opts.onclose) { opts.onclose(info); } },
      onerror: function (err) { if (opts.onerror) { opts.onerror(err); } },
      onstatechange: function (state) {
        settle(state);
        if (opts.onstatechange) { opts.onstatechange(state); }
      },
      heartbeatInterval: opts.heartbeatInterval,
      heartbeatTimeout: opts.heartbeatTimeout,
      reconnectDelay: opts.reconnectDelay,
      maxReconnectDelay: opts.maxReconnectDelay,
      jitter: opts.jitter,
      connectTimeout: opts.connectTimeout,
      recover: opts.recover,
      debug: opts.debug
    };

    var self = {
      channel: channel,
      connect: function () {
        wanted = true;
        if (live.indexOf(self) < 0) { live.push(self); }
        if (conn) { conn.connect(); }
      },
      disconnect: function () {
        wanted = false;
        var i = live.indexOf(self);
        if (i >= 0) { live.splice(i, 1); }
        if (conn) { conn.disconnect(); }
      },
      state: function () { return conn ? conn.state() : (failed ? "stopped" : "idle"); },
      stats: function () {
        return conn ? conn.stats()
          : { reconnects: 0, failedAttempts: 0, downtime: 0, rtt: null, messagesReceived: 0 };
      },
      ready: function (timeoutMs) {
        return new Promise(function (resolve, reject) {
          if (self.state() === "open") { resolve(); return; }
          if (failed) { reject(failed); return; }
          var w = { resolve: resolve, reject: reject, timer: null };
          if (timeoutMs != null) {
            w.timer = setTimeout(function () {
              waiters = waiters.filter(function (x) { return x !== w; });
              reject(new Error("not connected within " + timeoutMs + " ms"));
            }, timeoutMs);
          }
          waiters.push(w);
        });
      },
      _probe: function () { if (conn) { conn.probe(); } }
    };

    loadModule().then(function (m) {
      conn = new m.Connection(socketUrl(channel), hooks);
      if (wanted) { conn.connect(); }
    }).catch(function (err) {
      failed = err instanceof Error ? err : new Error(String(err));
      if (root.console) { root.console.error(failed.message); }
      hooks.onerror(failed);
      settle("stopped");
    });
    return self;
  }

  // REST calls to the gateway: get/options/head(url, query?) and post/put/patch/delete(url,
  // body?) resolve to the parsed JSON (null for 204); a gateway error rejects with an Error
  // carrying status, name, code, type and data from the Moleculer error body. Every request
  // but GET and HEAD says Content-Type: application/json, also without a body: the gateway
  // answers 415 to any other.
  function MoleculerHttpClient(options) {
    options = options || {};
    var headers = options.headers || {};

    function resolveUrl(url, query) {
      var u = new URL(url, options.baseUrl ? new URL(options.baseUrl, pageUrl()) : pageUrl());
      if (query) {
        Object.keys(query).forEach(function (k) {
          var v = query[k];
          (Array.isArray(v) ? v : [v]).forEach(function (x) { u.searchParams.append(k, String(x)); });
        });
      }
      return u.href;
    }

    function request(method, url, query, body) {
      var h = { "Accept": "application/json" };
      Object.keys(headers).forEach(function (k) { h[k] = headers[k]; });
      var init = { method: method, headers: h };
      if (method !== "GET" && method !== "HEAD") { h["Content-Type"] = "application/json"; }
      if (body !== undefined) { init.body = JSON.stringify(body); }
      return fetch(resolveUrl(url, query), init).then(function (resp) {
        return resp.text().then(function (text) {
          var data = null;
          if (text) {
            try { data = JSON.parse(text); } catch (e) { data = text; }
          }
          if (resp.ok) { return resp.status === 204 ? null : data; }
          var body = data && typeof data === "object" ? data : {};
          var err = new Error(body.message || ("HTTP " + resp.status));
          err.status = resp.status;
          err.name = body.name || "HttpError";
          err.code = body.code != null ? body.code : resp.status;
          err.type = body.type || null;
          err.data = body.data != null ? body.data : null;
          err.body = data;
          throw err;
        });
      });
    }

    return {
      get: function (url, query) { return request("GET", url, query); },
      options: function (url, query) { return request("OPTIONS", url, query); },
      head: function (url, query) { return request("HEAD", url, query); },
      post: function (url, body) { return request("POST", url, null, body); },
      put: function (url, body) { return request("PUT", url, null, body); },
      patch: function (url, body) { return request("PATCH", url, null, body); },
      "delete": function (url, body) { return request("DELETE", url, null, body); }
    };
  }

  root.MoleculerWebsocket = MoleculerWebsocket;
  root.MoleculerHttpClient = MoleculerHttpClient;
})(typeof globalThis !== "undefined" ? globalThis : this);
