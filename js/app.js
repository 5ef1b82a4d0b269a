// Demo page: a chat on the channel ws/chat. Messages arrive over the WebSocket
// (MoleculerWebsocket from websocket.js, with heartbeat and reconnect); the form posts to the
// gateway's REST route /api/chat/send (MoleculerHttpClient), which broadcasts to ws/chat.
// The channel is shared: open the page in several tabs of one browser and they hold ONE
// socket between them (a line under the status says which tab holds it, and how many
// sockets the gateway counts at /ws/chat); close that tab and another takes over. Another
// line shows the link live: the heartbeat's round trip, reconnects, and the messages
// recovered after one (stop and start the gateway while the page is open).
(function () {
  "use strict";
  var outDiv = document.getElementById("outDiv");
  var status = document.getElementById("status");
  var form = document.getElementById("chatForm");

  // The link, live: heartbeat round trip, reconnects, messages, recovered messages.
  var link = document.getElementById("link");
  var recovered = 0;
  function showLink() {
    if (!ws) { return; }
    var s = ws.stats();
    link.textContent = "heartbeat " + (s.rtt == null ? "–" : s.rtt + " ms") +
      " · reconnects " + s.reconnects + " · messages " + s.messagesReceived +
      " · recovered " + recovered;
  }

  function print(text) {
    var p = document.createElement("p");
    p.textContent = text;
    outDiv.appendChild(p);
    outDiv.scrollTop = outDiv.scrollHeight;
  }

  // The handler gets the message text; the page parses it, as pages of the original do.
  var ws = MoleculerWebsocket("ws/chat", function (msg) {
    var data = JSON.parse(msg);
    if (data.type === "message") {
      var time = new Date(data.time).toLocaleTimeString();
      print("[" + time + "] " + data.user + ": " + data.text);
    } else {
      print(msg);
    }
  }, {
    heartbeatInterval: 6000,
    heartbeatTimeout: 1000,
    shared: true,
    recover: true,
    onopen: function (evt, info) {
      if (info && info.recovered) { recovered += info.replayed; }
      showLink();
    },
    onresync: function () { print("(messages may have been missed while away)"); },
    onstatechange: function (state) {
      status.textContent = state === "open" ? "connected to ws/chat" : state + "…";
      status.className = state;
      showLink();
    }
  });
  ws.connect();

  var http = MoleculerHttpClient();

  // Which tab holds the socket, and the sockets the gateway counts (GET /api/websocket/clients).
  var tabs = document.getElementById("tabs");
  function showTabs() {
    if (document.visibilityState === "hidden") { return; }
    var who = ws.isLeader() ? "this tab holds the socket" : "another tab holds the socket";
    // The count needs the gateway's --trigger routes (scripts/demo.sh turns them on).
    http.get("api/websocket/clients").then(function (counts) {
      var n = counts["/ws/chat"] || 0;
      tabs.textContent = who + "; the gateway counts " + n + " socket" + (n === 1 ? "" : "s") +
        " at /ws/chat";
    }).catch(function () { tabs.textContent = who; });
  }
  setInterval(function () { showTabs(); showLink(); }, 1000);
  showTabs();
  form.addEventListener("submit", function (evt) {
    evt.preventDefault();
    http.post("api/chat/send", { user: form.user.value, text: form.text.value })
      .then(function () { form.text.value = ""; })
      .catch(function (err) { print("error: " + err.message); });
  });

  window.demo = { ws: ws, http: http };
})();
