/*
 * Deputy web chat widget. Plain JavaScript, no build step, no dependencies.
 *
 *   <script src="https://deputy.example.com/widget.js"
 *           data-agent="agt_..." data-key="dpy_..."></script>
 *
 * data-key is a widget key (a channel key with only the `widget:sessions` scope): it can only
 * start a session, i.e. a new conversation and a token for that conversation alone. Optional:
 * data-title (header text), data-open="true" (start open), data-color (accent, a CSS colour),
 * data-key-from="fragment" (read the key from the page address's "#key=...").
 *
 * The conversation (its id and token) is kept in localStorage, so it survives page reloads.
 * Replies stream over the conversation's WebSocket; a dropped connection is re-opened with
 * exponential backoff and "?after=<last seq seen>", so nothing is lost and nothing repeats.
 * Everything lives in a Shadow DOM: the host page's CSS cannot reach it.
 */
(function () {
  "use strict";

  var script = document.currentScript ||
    document.querySelector('script[data-agent][src*="widget.js"]');
  if (!script) return;

  var ATTACHMENT = /^\[attachment: (.+) \(([^,()]+), (\d+) bytes\)\]$/;
  var URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)]/g;
  var MAX_BACKOFF_MS = 30000;
  var PAPERCLIP = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" ' +
    'aria-hidden="true"><path d="M21 11l-8.5 8.5a5 5 0 0 1-7-7L14 4a3.5 3.5 0 0 1 5 5l-8.5 8.5' +
    'a2 2 0 0 1-3-3L15 7"/></svg>';
  var CHAT_ICON = '<path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/>';
  var CLOSE_ICON = '<path d="M6 9l6 6 6-6" fill="none" stroke="currentColor" stroke-width="2.5" ' +
    'stroke-linecap="round" stroke-linejoin="round"/>';
  var REFRESH_MARGIN_MS = 10 * 60 * 1000;

  var agentId = script.getAttribute("data-agent") || "";
  var key = script.getAttribute("data-key") || "";
  if (!key && script.getAttribute("data-key-from") === "fragment") {
    var match = /(?:^#|&)key=([^&]+)/.exec(location.hash);
    key = match ? decodeURIComponent(match[1]) : "";
  }
  var base = new URL(".", script.src);
  var socketBase = base.href.replace(/^http/, "ws");
  var storageKey = "deputy.widget:" + base.href + ":" + agentId;
  var accent = script.getAttribute("data-color") || "#3451d1";

  // ---- persisted state -------------------------------------------------------------------
  function load() {
    try {
      return JSON.parse(localStorage.getItem(storageKey) || "null");
    } catch (e) {
      return null;
    }
  }
  function save() {
    try {
      localStorage.setItem(storageKey, JSON.stringify({ session: session, open: isOpen }));
    } catch (e) { /* storage off: the conversation lasts as long as the page */ }
  }

  var stored = load() || {};
  var session = stored.session || null;
  var isOpen = false;
  var socket = null;
  var attempts = 0;
  var reconnectTimer = null;
  var refreshTimer = null;
  var lastSeq = 0;
  var pending = new Map();   // client_message_id -> {text, element}
  var streaming = null;      // the bubble a reply streams into
  var typing = false;
  var starting = null;       // the promise of a session being started
  var loadedAt = Date.now();  // replies newer than the page count as unread

  // ---- markup ------------------------------------------------------------------------------
  var host = document.createElement("deputy-chat");
  [["all", "initial"], ["position", "fixed"], ["right", "0"], ["bottom", "0"],
    ["z-index", "2147483000"], ["display", "block"], ["width", "0"], ["height", "0"]]
    .forEach(function (p) { host.style.setProperty(p[0], p[1], "important"); });
  var root = host.attachShadow({ mode: "open" });
  var title = script.getAttribute("data-title") || (session && session.title) || "Chat";

  root.innerHTML =
    '<style>' +
    ':host{all:initial}' +
    '*{box-sizing:border-box;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}' +
    '.launcher{position:fixed;right:20px;bottom:20px;width:60px;height:60px;border-radius:50%;' +
    'border:0;background:var(--accent);color:#fff;cursor:pointer;display:flex;align-items:center;' +
    'justify-content:center;box-shadow:0 6px 20px rgba(0,0,0,.25);transition:transform .15s}' +
    '.launcher:hover{transform:scale(1.06)}.launcher:focus-visible{outline:3px solid #ffbf47}' +
    '.launcher svg{width:28px;height:28px}.launcher .dot{position:absolute;top:6px;right:6px;' +
    'width:14px;height:14px;border-radius:50%;background:#e5484d;border:2px solid #fff}' +
    '.panel{position:fixed;right:20px;bottom:92px;width:370px;height:560px;max-height:calc(100vh - 112px);' +
    'background:#fff;color:#1f2933;border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.22);' +
    'display:flex;flex-direction:column;overflow:hidden;font-size:15px;line-height:1.45}' +
    '.panel[hidden]{display:none}' +
    'header{background:var(--accent);color:#fff;padding:14px 16px;display:flex;align-items:center;gap:8px}' +
    'header h2{font-size:16px;font-weight:600;margin:0;flex:1}' +
    'header .state{font-size:12px;opacity:.85}' +
    'header button{background:transparent;border:0;color:#fff;font-size:22px;cursor:pointer;' +
    'width:32px;height:32px;border-radius:8px;line-height:1}header button:hover{background:rgba(255,255,255,.15)}' +
    '.messages{flex:1;overflow-y:auto;padding:16px;display:flex;flex-direction:column;gap:8px;background:#f6f7fb}' +
    '.msg{max-width:82%;padding:9px 13px;border-radius:16px;white-space:pre-wrap;overflow-wrap:anywhere}' +
    '.msg.agent,.msg.human{align-self:flex-start;background:#fff;border:1px solid #e3e6ee;border-bottom-left-radius:4px}' +
    '.msg.human::before{content:attr(data-who);display:block;font-size:11px;color:#6b7280;margin-bottom:2px}' +
    '.msg.customer{align-self:flex-end;background:var(--accent);color:#fff;border-bottom-right-radius:4px}' +
    '.msg.customer a{color:#fff}.msg.pending{opacity:.6}.msg.failed{outline:2px solid #e5484d}' +
    '.msg .file{display:flex;align-items:center;gap:6px;font-size:14px}.msg .file svg{width:16px;height:16px;flex:none}' +
    '.note{align-self:center;font-size:12px;color:#6b7280;text-align:center;padding:2px 8px}' +
    '.typing{padding:0 16px 8px;background:#f6f7fb;display:flex}.typing[hidden]{display:none}' +
    '.typing .bubble{background:#fff;border:1px solid #e3e6ee;border-radius:16px;padding:10px 14px;display:flex;gap:4px}' +
    '.typing i{width:7px;height:7px;border-radius:50%;background:#9aa1b1;animation:blink 1.2s infinite}' +
    '.typing i:nth-child(2){animation-delay:.2s}.typing i:nth-child(3){animation-delay:.4s}' +
    '@keyframes blink{0%,80%,100%{opacity:.3;transform:translateY(0)}40%{opacity:1;transform:translateY(-3px)}}' +
    '.alert{background:#fff4e5;color:#8a4b00;font-size:13px;padding:8px 14px;border-top:1px solid #f5d9b0}' +
    '.alert[hidden]{display:none}.alert button{margin-left:8px}' +
    'form{display:flex;align-items:flex-end;gap:6px;padding:10px;border-top:1px solid #e3e6ee;background:#fff}' +
    'textarea{flex:1;resize:none;border:1px solid #d5d9e2;border-radius:12px;padding:9px 12px;' +
    'font-size:15px;max-height:120px;min-height:40px;color:#1f2933;background:#fff}' +
    'textarea:focus{outline:2px solid var(--accent);border-color:transparent}' +
    'form button{border:0;border-radius:12px;height:40px;min-width:40px;cursor:pointer;display:flex;' +
    'align-items:center;justify-content:center}' +
    '.send{background:var(--accent);color:#fff}.send:disabled{opacity:.5;cursor:default}' +
    '.attach{background:#eef0f6;color:#3d4451}.attach[hidden]{display:none}' +
    'button svg{width:20px;height:20px}' +
    '.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}' +
    'button.new{background:var(--accent);color:#fff;border:0;border-radius:8px;padding:6px 10px;cursor:pointer}' +
    '@media (max-width:480px){.panel{right:0;bottom:0;width:100vw;height:100vh;max-height:none;border-radius:0}}' +
    '</style>' +
    '<button class="launcher" type="button" aria-label="Open chat" aria-expanded="false" aria-controls="panel">' +
    '<svg class="icon" viewBox="0 0 24 24" fill="currentColor" aria-hidden="true">' + CHAT_ICON + '</svg>' +
    '<span class="dot" hidden></span></button>' +
    '<section class="panel" id="panel" role="dialog" aria-modal="false" hidden>' +
    '<header><h2 class="title"></h2><span class="state" aria-live="polite"></span>' +
    '<button type="button" class="close" aria-label="Close chat">&times;</button></header>' +
    '<div class="messages" role="log" aria-live="polite" aria-relevant="additions" aria-label="Messages"></div>' +
    '<div class="typing" role="status" hidden><div class="bubble" aria-hidden="true"><i></i><i></i><i></i></div>' +
    '<span class="sr-only typing-label"></span></div>' +
    '<div class="alert" role="alert" hidden></div>' +
    '<form novalidate>' +
    '<input class="file" type="file" hidden accept="image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,.txt,.csv,.md,.json,.log">' +
    '<button type="button" class="attach" aria-label="Attach a file" hidden>' +
    PAPERCLIP + '</button>' +
    '<label class="sr-only" for="input">Your message</label>' +
    '<textarea id="input" rows="1" maxlength="8000" placeholder="Type a message…" autocomplete="off"></textarea>' +
    '<button type="submit" class="send" aria-label="Send">' +
    '<svg viewBox="0 0 24 24" fill="currentColor" aria-hidden="true"><path d="M3 20l18-8L3 4v6l12 2-12 2z"/></svg></button>' +
    '</form></section>';

  root.host.style.setProperty("--accent", accent);
  function $(selector) { return root.querySelector(selector); }
  var launcher = $(".launcher"), panel = $(".panel"), log = $(".messages");
  var typingRow = $(".typing"), alertBox = $(".alert"), input = $("textarea");
  var fileInput = $(".file"), attachButton = $(".attach"), stateLabel = $(".state");
  var unreadDot = $(".launcher .dot");

  function setTitle(text) {
    title = text;
    $(".title").textContent = text;
    panel.setAttribute("aria-label", "Chat with " + text);
    $(".typing-label").textContent = text + " is typing";
  }
  setTitle(title);

  // ---- rendering ---------------------------------------------------------------------------
  function fillText(element, text) {
    element.textContent = "";
    var at = 0;
    text.replace(URL_PATTERN, function (url, offset) {
      element.appendChild(document.createTextNode(text.slice(at, offset)));
      var link = document.createElement("a");
      link.href = url;
      link.textContent = url;
      link.target = "_blank";
      link.rel = "noopener noreferrer nofollow";
      element.appendChild(link);
      at = offset + url.length;
      return url;
    });
    element.appendChild(document.createTextNode(text.slice(at)));
  }

  function fillMessage(element, text) {
    var lines = text.split("\n");
    var last = lines[lines.length - 1];
    var file = ATTACHMENT.exec(last);
    if (!file) return fillText(element, text);
    element.textContent = "";
    if (lines.length > 1) {
      var caption = document.createElement("div");
      fillText(caption, lines.slice(0, -1).join("\n"));
      element.appendChild(caption);
    }
    var chip = document.createElement("div");
    chip.className = "file";
    chip.innerHTML = PAPERCLIP;
    chip.appendChild(document.createTextNode(file[1] + " \u00B7 " + humanSize(Number(file[3]))));
    element.appendChild(chip);
  }

  function humanSize(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return Math.round(bytes / 1024) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function bubble(kind, text, extraClass) {
    var element = document.createElement("div");
    element.className = "msg " + kind + (extraClass ? " " + extraClass : "");
    if (kind === "customer") fillMessage(element, text);
    else fillText(element, text);
    log.appendChild(element);
    scrollDown();
    return element;
  }

  function note(text) {
    var element = document.createElement("div");
    element.className = "note";
    element.textContent = text;
    log.appendChild(element);
    scrollDown();
    return element;
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function setTyping(on) {
    typing = on && (!session || session.status === "active");
    typingRow.hidden = !typing;
    if (typing) scrollDown();
  }

  function showAlert(text, action) {
    alertBox.textContent = text;
    if (action) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "new";
      button.textContent = action.label;
      button.addEventListener("click", action.run);
      alertBox.appendChild(button);
    }
    alertBox.hidden = false;
  }
  function clearAlert() { alertBox.hidden = true; alertBox.textContent = ""; }

  function markUnread() { if (!isOpen) unreadDot.hidden = false; }

  // ---- conversation events -----------------------------------------------------------------
  function onEntry(entry) {
    if (entry.seq <= lastSeq) return;  // seen already (a replay after reconnecting)
    lastSeq = entry.seq;
    var data = entry.data || {};
    if (entry.kind === "customer_message") {
      var mine = data.client_message_id && pending.get(data.client_message_id);
      if (mine) {
        pending.delete(data.client_message_id);
        mine.element.classList.remove("pending");
        fillMessage(mine.element, entry.text);
      } else {
        bubble("customer", entry.text);
      }
      setTyping(true);
    } else if (entry.kind === "agent_message" || entry.kind === "human_message") {
      var who = entry.kind === "agent_message" ? "agent" : "human";
      if (streaming && who === "agent") {
        fillText(streaming, entry.text);
        streaming.removeAttribute("data-streaming");
        streaming = null;
        log.removeAttribute("aria-busy");
      } else {
        var element = bubble(who, entry.text);
        if (who === "human") element.setAttribute("data-who", "Support team");
      }
      setTyping(false);
      if (Date.parse(entry.created_at) >= loadedAt) markUnread();
    } else if (entry.kind === "turn_failed") {
      setTyping(false);
      note("Sorry, something went wrong. Please try again.");
    } else if (entry.kind === "outcome") {
      note("This conversation has ended.");
    }
  }

  function onDelta(text) {
    if (!streaming) {
      log.setAttribute("aria-busy", "true");
      streaming = bubble("agent", "");
      streaming.setAttribute("data-streaming", "");
    }
    streaming.textContent += text;
    setTyping(false);
    scrollDown();
  }

  function onStatus(conversation) {
    if (!conversation || !session || conversation.status === session.status) return;
    session.status = conversation.status;
    save();
    if (conversation.status === "closed") ended();
    else if (conversation.status === "queued") note("A colleague will join the conversation shortly.");
  }

  function onEvent(event) {
    if (event.type === "entry" && event.entry) onEntry(event.entry);
    else if (event.type === "reply.delta" && event.text) onDelta(event.text);
    else if (event.type === "turn.completed" || event.type === "turn.failed") {
      setTyping(false);
      log.removeAttribute("aria-busy");
      if (event.conversation) onStatus(event.conversation);
    } else if (event.type === "status") onStatus(event.conversation);
    else if (event.type === "error" && event.error) {
      setTyping(false);
      showAlert(event.error.message);
    }
  }

  function ended() {
    setTyping(false);
    input.disabled = true;
    showAlert("This conversation has ended.", { label: "Start a new one", run: restart });
  }

  // ---- HTTP --------------------------------------------------------------------------------
  function call(path, token, body) {
    var headers = { Authorization: "Bearer " + token };
    if (body && !(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(body);
    }
    return fetch(new URL(path, base), { method: "POST", headers: headers, body: body || null })
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (data) {
          if (response.ok) return data;
          var error = new Error((data && data.error && data.error.message) || "HTTP " + response.status);
          error.status = response.status;
          throw error;
        });
      });
  }

  function adopt(fresh) {
    session = fresh;
    save();
    if (!script.getAttribute("data-title") && fresh.title) setTitle(fresh.title);
    attachButton.hidden = !fresh.allow_uploads;
    clearTimeout(refreshTimer);
    var wait = new Date(fresh.expires_at).getTime() - Date.now() - REFRESH_MARGIN_MS;
    refreshTimer = setTimeout(refresh, Math.max(wait, 10000));
    return fresh;
  }

  function start() {
    if (starting) return starting;
    if (!agentId || !key) {
      showAlert("This chat is not set up: its script tag needs data-agent and data-key.");
      return Promise.reject(new Error("no agent or key"));
    }
    starting = call("v1/widget/sessions", key).then(adopt).then(function (fresh) {
      connect();
      return fresh;
    }, function (error) {
      showAlert("The chat is unavailable right now (" + error.message + ").");
      throw error;
    }).finally(function () { starting = null; });
    return starting;
  }

  function refresh() {
    if (!session) return Promise.resolve(null);
    return call("v1/widget/sessions/refresh", session.token).then(adopt, function (error) {
      if (error.status === 401 || error.status === 403 || error.status === 404) {
        forget();
        if (isOpen) return start();
        return null;
      }
      throw error;
    });
  }

  function forget() {
    closeSocket();
    session = null;
    lastSeq = 0;
    pending.clear();
    streaming = null;
    log.textContent = "";
    save();
  }

  function restart() {
    clearAlert();
    input.disabled = false;
    forget();
    start();
  }

  // ---- the WebSocket -----------------------------------------------------------------------
  function connect() {
    if (!session || socket) return;
    clearTimeout(reconnectTimer);
    var url = socketBase + "v1/conversations/" + encodeURIComponent(session.conversation_id) +
      "/ws?after=" + lastSeq;
    var ws = new WebSocket(url, ["deputy.v1", "bearer." + session.token]);
    socket = ws;
    ws.onopen = function () {
      attempts = 0;
      stateLabel.textContent = "";
      pending.forEach(function (message, id) { transmit(id, message.text); });
    };
    ws.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      onEvent(event);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      if (event.code === 4404 || event.code === 4403) {
        forget();
        showAlert("This conversation is no longer available.", { label: "Start a new one", run: restart });
      } else if (event.code === 4401 || event.code === 1000) {
        refresh().then(function (fresh) {
          if (fresh && fresh.status === "closed") ended();
          else if (fresh) connect();
        }, reconnectLater);
      } else {
        reconnectLater();
      }
    };
  }

  function reconnectLater() {
    if (!session) return;
    stateLabel.textContent = "Reconnecting…";
    var delay = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, attempts)) * (0.5 + Math.random() / 2);
    attempts += 1;
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(connect, delay);
  }

  function closeSocket() {
    clearTimeout(reconnectTimer);
    if (socket) {
      var ws = socket;
      socket = null;
      ws.close(1000);
    }
  }

  function transmit(id, text) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "message", text: text, client_message_id: id }));
    }
  }

  window.addEventListener("online", function () {
    if (session && !socket) { attempts = 0; connect(); }
  });

  // ---- user actions ------------------------------------------------------------------------
  function send(text) {
    text = text.trim();
    if (!text) return;
    var id = "w" + Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
    pending.set(id, { text: text, element: bubble("customer", text, "pending") });
    setTyping(true);
    clearAlert();
    var ready = session ? Promise.resolve(session) : start();
    ready.then(function () { transmit(id, text); }, function () {
      var message = pending.get(id);
      if (message) message.element.classList.add("failed");
      setTyping(false);
    });
  }

  function upload(file) {
    if (!session) return;
    if (file.size > session.max_upload_bytes) {
      showAlert(file.name + " is too large (at most " + humanSize(session.max_upload_bytes) + ").");
      return;
    }
    var form = new FormData();
    form.append("file", file, file.name);
    stateLabel.textContent = "Uploading…";
    setTyping(true);
    call("v1/conversations/" + encodeURIComponent(session.conversation_id) + "/attachments",
      session.token, form).then(function () {
      stateLabel.textContent = "";
    }, function (error) {
      stateLabel.textContent = "";
      setTyping(false);
      showAlert("The file was not sent: " + error.message);
    });
  }

  function open() {
    isOpen = true;
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    launcher.setAttribute("aria-label", "Close chat");
    $(".launcher .icon").innerHTML = CLOSE_ICON;
    unreadDot.hidden = true;
    save();
    if (!session) start().catch(function () {});
    else connect();
    setTimeout(function () { input.focus(); scrollDown(); }, 0);
  }

  function close() {
    isOpen = false;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.setAttribute("aria-label", "Open chat");
    $(".launcher .icon").innerHTML = CHAT_ICON;
    save();
    launcher.focus();
  }

  launcher.addEventListener("click", function () { if (isOpen) close(); else open(); });
  $(".close").addEventListener("click", close);
  panel.addEventListener("keydown", function (event) { if (event.key === "Escape") close(); });
  $("form").addEventListener("submit", function (event) {
    event.preventDefault();
    send(input.value);
    input.value = "";
    input.style.height = "";
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("form").requestSubmit();
    }
  });
  input.addEventListener("input", function () {
    input.style.height = "";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  });
  attachButton.addEventListener("click", function () { fileInput.click(); });
  fileInput.addEventListener("change", function () {
    if (fileInput.files && fileInput.files[0]) upload(fileInput.files[0]);
    fileInput.value = "";
  });

  function mount() {
    document.body.appendChild(host);
    if (session) {
      attachButton.hidden = !session.allow_uploads;
      refresh().then(function (fresh) {
        if (!fresh) return;
        if (fresh.status === "closed") ended();
        connect();
      }, function () { connect(); });
    }
    if (stored.open || script.getAttribute("data-open") === "true") open();
  }

  window.DeputyChat = { open: open, close: close };
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
