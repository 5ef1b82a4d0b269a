/*! moleculer-ws browser client (MIT): a drop-in for the websocket.js of Moleculer-Java. */
/*
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
  // scripts/bundle-browser.mjs. WASM is the module, raw deflate then base64, in the single file, and
  // empty in the split build, which fetches websocket.wasm from next to the script.
  /*@glue*/
  var WASM = "@WASM@";

  var doc = root.document;
  var script = doc && doc.currentScript;
  var base = root.MOLECULER_WS_BASE ||
    (script && script.src) || (root.location && root.location.href);
  var modulePromise = null;
  var live = [];

  // The inlined module, unpacked by the browser's own inflate.
  function inflate() {
    if (typeof DecompressionStream !== "function") {
      throw new Error("this browser has no DecompressionStream (use the split build)");
    }
    var bin = atob(WASM), bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    return new Response(new Blob([bytes]).stream()
      .pipeThrough(new DecompressionStream("deflate-raw"))).arrayBuffer();
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

  // Page lifecycle: a tab that leads a shared channel hands it over when the page is frozen
  // or hidden (the next tab connects at once), and asks again when it is back.
  var sharing = [];
  function eachShared(method) {
    return function () { for (var i = 0; i < sharing.length; i++) { sharing[i][method](); } };
  }
  if (doc && root.addEventListener) {
    doc.addEventListener("freeze", eachShared("_leave"));
    root.addEventListener("pagehide", eachShared("_leave"));
    doc.addEventListener("resume", eachShared("_back"));
    root.addEventListener("pageshow", eachShared("_back"));
  }
  var HOOKS = ["handler", "onopen", "onresync", "onreconnect", "onclose", "onerror", "onstatechange"];
  // The names of `on(event, fn)`: each hook without its "on" ("handler" is "message").
  function eventOf(hook) { return hook === "handler" ? "message" : hook.slice(2); }

  // `url` with `name=token` added (a null or undefined token adds nothing).
  function withToken(url, name, token) {
    return token == null ? url : url + (url.indexOf("?") < 0 ? "?" : "&") +
      encodeURIComponent(name) + "=" + encodeURIComponent(token);
  }

  function MoleculerWebsocket(channel, handler, opts) {
    if (!channel) { channel = "ws/common"; }
    opts = opts || {};
    var url = socketUrl(channel);
    var module = null;      // the wasm module, once loaded
    var conn = null;        // the wasm Connection (in a shared channel: only while leading)
    var wanted = false;     // connect() was called and disconnect() was not
    var failed = null;      // the load error, if the module could not load
    var waiters = [];
    var listeners = {};     // on(event, fn)
    var shown = "idle";     // the state last given to onstatechange
    // One socket for all tabs (README "One socket for all tabs"): the tabs that open this
    // channel with `shared` elect a leader with a Web Lock; only the leader holds a
    // Connection, and it posts every callback it makes (with its state, counters and
    // recovery position) on a BroadcastChannel; the others make the same callbacks.
    var tab = null;
    var beatMs = (+opts.heartbeatInterval || 6000) / 3;
    if (opts.shared) {
      if (root.BroadcastChannel && root.navigator && root.navigator.locks) {
        // Also (unset until used): bc, leading, resynced, release, req, abort, stats, pos,
        // mute, seen, beat, watch.
        tab = { id: Math.random(), delivered: 0 };
      } else if (root.console) {
        root.console.info("moleculer-ws: no Web Locks or BroadcastChannel here (Web Locks need " +
          "https or localhost): this tab keeps a socket of its own");
      }
    }

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

    // Makes one of the page's callbacks (read from opts at call time, as the original does).
    function emit(name, args) {
      if (name === "onstatechange") {
        if (args[0] === shown) { return; }
        shown = args[0];
        settle(shown);
      }
      var f = name === "handler" ? handler : opts[name];
      if (f) { f.apply(null, args); }
      var l = listeners[eventOf(name)];
      if (l) { l.slice().forEach(function (g) { g.apply(null, args); }); }
    }

    function post(msg) {
      try { tab.bc.postMessage(msg); } catch (e) { /* closed, or a value that cannot be cloned */ }
    }

    // What the module reads: the options as given (read once, here), the callbacks below.
    var hooks = Object.assign({}, opts, {
      // `tokenProvider` (a token, or a promise of one) is asked before every attempt; the
      // token goes in the query (a browser WebSocket sends no headers).
      urlFor: opts.tokenProvider && function () {
        return new Promise(function (r) { r(opts.tokenProvider()); }).then(function (t) {
          return withToken(url, opts.tokenQueryParam || "token", t);
        }, function (e) {
          if (root.console) { root.console.error("moleculer-ws: the token provider failed:", e); }
        });
      }
    });
    HOOKS.forEach(function (name) {
      hooks[name] = function () {
        var args = [].slice.call(arguments);
        if (tab && tab.mute) { return; }
        if (tab && tab.leading) {
          // The counters go with the beat and every callback but a message (the per-message
          // path stays light).
          post({ n: name, a: args.map(function (a) { return a instanceof Event ? null : a; }),
            s: conn.state(), t: name === "handler" ? undefined : conn.stats(), p: conn.position() });
        }
        emit(name, args);
      };
    });

    function start() {
      if (!module || !wanted || failed) { return; }
      if (!tab) {
        if (!conn) { conn = new module.Connection(url, hooks); }
        conn.connect();
        return;
      }
      if (tab.leading) { conn.connect(); return; }
      if (!tab.bc) {
        tab.bc = new BroadcastChannel("moleculer-ws " + url);
        tab.bc.onmessage = receive;
      }
      if (shown === "idle" || shown === "stopped") { emit("onstatechange", ["connecting"]); }
      if (sharing.indexOf(self) < 0) { sharing.push(self); }
      // Known to the leader already (its session may have stopped): ask it to connect again.
      if (tab.req) { post({ w: 1 }); return; }
      ask(false);
      post({ j: tab.id, p: tab.pos });
      // A leader that stops posting (frozen without a `freeze` event, or hung) is replaced:
      // it posts every third of the heartbeat interval, and a visible tab that hears nothing
      // for two thirds of it takes the lock from it (a hidden one, whose timers the browser
      // slows, waits a minute).
      tab.seen = Date.now();
      if (!tab.watch) {
        tab.watch = setInterval(function () {
          var silent = Date.now() - tab.seen;
          if (wanted && !tab.leading && tab.seen && silent > 2 * beatMs &&
              (!doc || doc.visibilityState !== "hidden" || silent > 60000)) {
            tab.seen = 0;
            ask(true);
          }
        }, beatMs / 2);
      }
    }

    // Asks for the lock (queued while another tab holds it; `steal` takes it from a silent
    // leader). A request that is no longer the tab's latest gives the lock back at once.
    function ask(steal) {
      var req = tab.req = {};
      // A queued request is withdrawn when the page is frozen or hidden (`steal` takes no signal);
      // a steal leaves the line first.
      if (tab.abort) { tab.abort.abort(); }
      tab.abort = steal ? null : new AbortController();
      function lost() {
        // The lock was taken from this tab (it was silent): the new leader holds the socket.
        if (tab.req === req && tab.leading) { tab.release = null; stepDown(true); start(); }
      }
      root.navigator.locks.request("moleculer-ws " + url,
        steal ? { steal: true } : { signal: tab.abort.signal }, function () {
          if (!wanted || tab.req !== req) { return; }
          hooks.resumeFrom = tab.pos;
          try {
            conn = new module.Connection(url, hooks);
          } catch (err) {
            fail(err);  // a bad option: said once, the lock goes back
            return;
          }
          return new Promise(function (release) {
            tab.release = release;
            tab.leading = true;
            post({ l: 1 });
            tab.beat = setInterval(function () { post({ b: 1, t: conn.stats() }); }, beatMs);
            conn.connect();
          });
        }).then(lost, lost);
    }

    // A shared channel's leader hands over: quietly (its page is leaving) or not.
    function stepDown(quiet) {
      var c = conn;
      tab.leading = false;
      if (c) {
        tab.delivered += c.stats().messagesReceived;
        tab.pos = c.position() || tab.pos;
        tab.mute = quiet;
        c.disconnect();
        tab.mute = false;
        conn = null;  // freed by the glue's FinalizationRegistry (this may run in its callback)
      }
      clearInterval(tab.beat);
      tab.req = null;
      if (tab.release) { post({ l: 1 }); tab.release(); tab.release = null; }
    }

    // A follower withdraws its queued request (a frozen page must not be next in line).
    function withdraw() {
      if (tab.abort) { tab.abort.abort(); }
      tab.abort = null;
      tab.req = null;
    }

    function fail(err) {
      failed = err instanceof Error ? err : new Error(String(err));
      if (root.console) { root.console.error(failed.message); }
      hooks.onerror(failed);
      settle("stopped");
      if (tab) { leave(); }
    }

    // A shared channel this tab no longer wants: out of the line, its timer and its channel
    // closed (a leader steps down first).
    function leave() {
      wanted = false;
      withdraw();
      clearInterval(tab.watch);
      tab.watch = null;
      var i = sharing.indexOf(self);
      if (i >= 0) { sharing.splice(i, 1); }
      if (tab.bc) { tab.bc.close(); tab.bc = null; }
    }

    // What another tab posted.
    function receive(e) {
      var d = e.data;
      if (tab.leading) {
        if (d.j) {
          // A tab joined: tell it (only it) the state, counters and position; a stopped
          // session connects again (a tab wants the channel).
          if (conn.state() === "stopped") { conn.connect(); }
          post({ to: d.j, s: conn.state(), t: conn.stats(), p: conn.position() });
        }
        // A tab wants the channel connected (this session may have stopped).
        if (d.w) { conn.connect(); }
        return;
      }
      if (d.j || d.w) { return; }
      tab.seen = Date.now();
      if (!wanted || (d.to && d.to !== tab.id)) { return; }
      if (d.l) { emit("onstatechange", ["connecting"]); return; }
      if (d.t) { tab.stats = d.t; }
      if (!d.s) { return; }
      // The position is what this tab delivered: only a message, or the answer to its joining,
      // moves it (forward within an epoch).
      if ((d.n === "handler" || d.to) && d.p) {
        if (tab.pos) {
          var at = d.p.split(":"), had = tab.pos.split(":");
          var same = at[0] === had[0];
          if (same && +at[1] <= +had[1]) {
            // What this tab has (the next leader replays from its own position), it skips.
            if (d.n) { return; }
            d.p = tab.pos;
          } else if ((!same || +at[1] > +had[1] + (d.n ? 1 : 0)) && !tab.resynced) {
            // Messages passed this tab (its page was frozen or hidden): the page may refetch.
            emit("onresync", []);
          }
        }
        tab.pos = d.p;
        tab.resynced = false;
      }
      // The leader's own resync (a gap it saw) covers the next message's.
      if (d.n === "onresync") { tab.resynced = true; }
      if (d.n === "handler") { tab.delivered++; }
      // A tab that joins an open channel sees it open.
      if (d.s === "open" && shown !== "open" && d.n !== "onopen" && d.n !== "onstatechange") {
        emit("onstatechange", ["open"]);
        emit("onopen", [null, opts.recover ? { recovered: false, replayed: 0 } : undefined]);
      } else if (!d.n) {
        emit("onstatechange", [d.s]);
      }
      if (d.n) { emit(d.n, d.a); }
    }

    var self = {
      channel: channel,
      connect: function () {
        wanted = true;
        if (live.indexOf(self) < 0) { live.push(self); }
        start();
      },
      disconnect: function () {
        wanted = false;
        var i = live.indexOf(self);
        if (i >= 0) { live.splice(i, 1); }
        if (!tab) {
          if (conn) { conn.disconnect(); }
          return;
        }
        if (tab.leading) {
          stepDown(false);
        } else {
          if (shown === "open") { emit("onclose", [{ code: 1000, reason: "", willReconnect: false }]); }
          if (shown !== "idle") { emit("onstatechange", ["stopped"]); }
        }
        leave();
      },
      state: function () {
        if (failed) { return "stopped"; }
        return tab || !conn ? shown : conn.state();
      },
      stats: function () {
        var s = conn ? conn.stats() : (tab && tab.stats) ||
          { reconnects: 0, failedAttempts: 0, downtime: 0, rtt: null, messagesReceived: 0 };
        if (tab) {
          s = Object.assign({}, s);
          s.messagesReceived = (conn ? s.messagesReceived : 0) + tab.delivered;
        }
        return s;
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
      // Listeners besides the options' callbacks: "message", "open", "close", "error",
      // "statechange", "resync", "reconnect"; called with the same arguments.
      on: function (event, fn) {
        if (HOOKS.map(eventOf).indexOf(event) < 0 || typeof fn !== "function") {
          throw new TypeError("on(event, fn): bad event or fn: " + event);
        }
        (listeners[event] = listeners[event] || []).push(fn);
        return self;
      },
      // Removes a listener (all of the event's without `fn`).
      off: function (event, fn) {
        var l = listeners[event] || [];
        listeners[event] = fn ? l.filter(function (g) { return g !== fn; }) : [];
        return self;
      },
      // Whether this tab holds the socket (always true without `shared`, once connected).
      isLeader: function () { return tab ? !!tab.leading : !!conn; },
      _probe: function () { if (conn) { conn.probe(); } },
      _leave: function () { if (tab.leading) { stepDown(true); } else { withdraw(); } },
      _back: function () { if (!tab.leading) { start(); } }
    };

    loadModule().then(function (m) {
      module = m;
      start();
    }).catch(fail);
    return self;
  }

  // REST calls to the gateway: get/options/head(url, query?, init?) and post/put/patch/
  // delete(url, body?, init?) resolve to the parsed JSON (null for 204); a gateway error
  // rejects with an Error carrying status, name, code, type and data from the Moleculer error
  // body. Every request but GET and HEAD says Content-Type: application/json, also without a
  // body: the gateway answers 415 to any other. Options: baseUrl, headers, timeout (ms; 0 or
  // none: no limit),
  // tokenProvider (a token or a promise of one, sent as Authorization: Bearer); `init` per
  // request: headers, signal (an AbortSignal), timeout. A timeout rejects with a TimeoutError,
  // (a DOMException), an abort with the signal's reason.
  function MoleculerHttpClient(options) {
    options = options || {};

    function resolveUrl(url, query) {
      var u = new URL(url, options.baseUrl ? new URL(options.baseUrl, pageUrl()) : pageUrl());
      if (query) {
        Object.keys(query).forEach(function (k) {
          var v = query[k];
          [].concat(v).forEach(function (x) { u.searchParams.append(k, String(x)); });
        });
      }
      return u.href;
    }

    function request(method, url, query, body, init) {
      init = init || {};
      var h = { "Accept": "application/json" };
      if (method !== "GET" && method !== "HEAD") { h["Content-Type"] = "application/json"; }
      Object.assign(h, options.headers, init.headers);
      var timeout = init.timeout != null ? init.timeout : options.timeout;
      var stop = new AbortController(), signal = init.signal, timer;
      function abort() { stop.abort(signal.reason); }
      if (signal) {
        if (signal.aborted) { abort(); } else { signal.addEventListener("abort", abort); }
      }
      if (timeout) {
        timer = setTimeout(function () {
          stop.abort(new DOMException("timed out after " + timeout + " ms", "TimeoutError"));
        }, timeout);
      }
      // fetch (and the body's reading) rejects with the abort's reason; so does the wait for
      // the token (a provider that throws rejects the call).
      return new Promise(function (resolve, reject) {
        if (stop.signal.aborted) { reject(stop.signal.reason); return; }
        stop.signal.onabort = function () { reject(stop.signal.reason); };
        // Followed, not adopted: an abort still rejects while the token is awaited.
        Promise.resolve(options.tokenProvider && options.tokenProvider()).then(resolve, reject);
      }).then(function (token) {
        if (token != null) { h.Authorization = "Bearer " + token; }
        var req = { method: method, headers: h, signal: stop.signal };
        if (body !== undefined) { req.body = JSON.stringify(body); }
        return fetch(resolveUrl(url, query), req);
      }).then(function (resp) {
        return resp.text().then(function (text) {
          var data = null;
          if (text) {
            try { data = JSON.parse(text); } catch (e) { data = text; }
          }
          if (resp.ok) { return resp.status === 204 ? null : data; }
          var body = data && typeof data === "object" ? data : {};
          throw Object.assign(new Error(body.message || ("HTTP " + resp.status)), {
            status: resp.status, name: body.name || "HttpError",
            code: body.code != null ? body.code : resp.status, type: body.type || null,
            data: body.data != null ? body.data : null, body: data
          });
        });
      })["finally"](function () {
        clearTimeout(timer);
        if (signal) { signal.removeEventListener("abort", abort); }
      });
    }

    return {
      get: function (url, query, init) { return request("GET", url, query, undefined, init); },
      options: function (url, query, init) { return request("OPTIONS", url, query, undefined, init); },
      head: function (url, query, init) { return request("HEAD", url, query, undefined, init); },
      post: function (url, body, init) { return request("POST", url, null, body, init); },
      put: function (url, body, init) { return request("PUT", url, null, body, init); },
      patch: function (url, body, init) { return request("PATCH", url, null, body, init); },
      "delete": function (url, body, init) { return request("DELETE", url, null, body, init); }
    };
  }

  root.MoleculerWebsocket = MoleculerWebsocket;
  root.MoleculerHttpClient = MoleculerHttpClient;
  // CommonJS (require(), bundlers that read this file as a module): the same two functions.
  if (typeof module === "object" && module && module.exports) {
    module.exports = { MoleculerWebsocket: MoleculerWebsocket, MoleculerHttpClient: MoleculerHttpClient };
  }
})(typeof globalThis !== "undefined" ? globalThis : this);
