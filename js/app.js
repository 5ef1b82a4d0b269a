// Demo page: listens on ws/chat and posts chat messages over REST.
// Uses the browser's WebSocket with the Moleculer heartbeat (`!` answered by `!`) and
// reconnects when the link breaks. The wasm client (MoleculerWebsocket) will replace this loop.
(function () {
  "use strict";
  var out = document.getElementById("outDiv");
  var status = document.getElementById("status");
  var form = document.getElementById("chatForm");
  var HEARTBEAT_INTERVAL = 6000, HEARTBEAT_TIMEOUT = 1000, RECONNECT_DELAY = 3000;

  function print(text) {
    var p = document.createElement("p");
    p.textContent = text;
    out.appendChild(p);
    out.scrollTop = out.scrollHeight;
  }

  function handler(msg) {
    var data;
    try { data = JSON.parse(msg); } catch (e) { print(msg); return; }
    if (data && data.type === "message") {
      var time = new Date(data.time).toLocaleTimeString();
      print("[" + time + "] " + data.user + ": " + data.text);
    } else {
      print(msg);
    }
  }

  function connect() {
    var url = new URL("ws/chat", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(url.href), sent = 0, received = 0, timer = null;
    ws.onopen = function () {
      status.textContent = "connected to " + url.pathname;
      status.className = "open";
      sent = received = Date.now();
      timer = setInterval(function () {
        var now = Date.now();
        if (now - sent > HEARTBEAT_INTERVAL) { sent = now; ws.send("!"); }
        else if (sent - received >= HEARTBEAT_TIMEOUT && now - sent >= HEARTBEAT_TIMEOUT) { ws.close(); }
      }, HEARTBEAT_INTERVAL / 3);
    };
    ws.onmessage = function (evt) {
      if (evt.data === "!") { received = Date.now(); return; }
      handler(evt.data);
    };
    ws.onclose = function () {
      clearInterval(timer);
      status.textContent = "disconnected, reconnecting…";
      status.className = "";
      setTimeout(connect, RECONNECT_DELAY);
    };
  }

  form.addEventListener("submit", function (evt) {
    evt.preventDefault();
    var body = { user: form.user.value, text: form.text.value };
    fetch("api/chat/send", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body)
    }).then(function (resp) {
      if (!resp.ok) { return resp.json().then(function (e) { print("error: " + e.message); }); }
      form.text.value = "";
    }).catch(function (e) { print("error: " + e); });
  });

  connect();
})();
