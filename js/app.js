// Demo page: a chat on the channel ws/chat. Messages arrive over the WebSocket
// (MoleculerWebsocket from websocket.js, with heartbeat and reconnect); the form posts to the
// gateway's REST route /api/chat/send (MoleculerHttpClient), which broadcasts to ws/chat.
(function () {
  "use strict";
  var outDiv = document.getElementById("outDiv");
  var status = document.getElementById("status");
  var form = document.getElementById("chatForm");

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
    onstatechange: function (state) {
      status.textContent = state === "open" ? "connected to ws/chat" : state + "…";
      status.className = state;
    }
  });
  ws.connect();

  var http = MoleculerHttpClient();
  form.addEventListener("submit", function (evt) {
    evt.preventDefault();
    http.post("api/chat/send", { user: form.user.value, text: form.text.value })
      .then(function () { form.text.value = ""; })
      .catch(function (err) { print("error: " + err.message); });
  });

  window.demo = { ws: ws, http: http };
})();
