// roster admin page: copy buttons, the set-up form's type switch, and live
// updates. Everything works without this file; it only makes it quicker.
(function () {
  "use strict";

  // Copy buttons: data-copy-target names the element whose value (or text)
  // is copied.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("button.copy");
    if (!btn) return;
    ev.preventDefault();
    var el = document.getElementById(btn.dataset.copyTarget);
    if (!el) return;
    var value = "value" in el ? el.value : el.textContent;
    var done = function () { btn.textContent = "Copied"; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(value).then(done, function () { fallbackCopy(el); done(); });
    } else {
      fallbackCopy(el);
      done();
    }
  });

  function fallbackCopy(el) {
    if (el.select) {
      el.select();
      try { document.execCommand("copy"); } catch (e) { /* the value stays selected */ }
    }
  }

  // The set-up form shows the chosen type's settings only.
  function showTypeFields() {
    var sel = document.querySelector("#create-directory select[name=type]");
    if (!sel) return;
    document.querySelectorAll("#create-directory fieldset.type-fields").forEach(function (fs) {
      fs.hidden = fs.dataset.type !== sel.value;
    });
  }
  document.addEventListener("change", function (ev) {
    if (ev.target.matches && ev.target.matches("#create-directory select[name=type]")) showTypeFields();
  });

  // Inputs the admin changed: kept across live re-renders.
  var dirty = {};
  function keyOf(el) {
    if (el.id) return "#" + el.id;
    var holder = el.closest("[data-key]");
    return (holder ? holder.dataset.key : "") + "/" + el.name;
  }
  document.addEventListener("input", function (ev) {
    var el = ev.target;
    if (el.closest && el.closest("main#main") && (el.name || el.id)) dirty[keyOf(el)] = true;
  });
  document.addEventListener("submit", function () { dirty = {}; });

  // Re-read the screen and swap main#main, keeping focus and typed input.
  var refreshing = false, again = false, timer = null;
  function refresh() {
    if (refreshing) { again = true; return; }
    var main = document.getElementById("main");
    if (!main) return;
    refreshing = true;
    var path = main.dataset.path || location.pathname + location.search;
    var url = path + (path.indexOf("?") >= 0 ? "&" : "?") + "fragment=main";
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (resp) {
      if (resp.redirected || resp.status === 401 || resp.status === 403 && resp.url.indexOf("/signin") >= 0) {
        location.reload();
        return null;
      }
      return resp.text();
    }).then(function (html) {
      if (html) swap(html);
    }).catch(function () { /* the next event tries again */ }).then(function () {
      refreshing = false;
      if (again) { again = false; schedule(); }
    });
  }

  function swap(html) {
    var main = document.getElementById("main");
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("main");
    if (!main || !fresh) return;
    var active = document.activeElement;
    var focusKey = active && main.contains(active) && active !== main ? keyOf(active) : null;
    var selStart = null, selEnd = null;
    try { selStart = active.selectionStart; selEnd = active.selectionEnd; } catch (e) { /* not a text field */ }
    var kept = {};
    main.querySelectorAll("input, select, textarea").forEach(function (el) {
      var k = keyOf(el);
      if (dirty[k] || k === focusKey) kept[k] = el.type === "checkbox" ? el.checked : el.value;
    });
    var openDetails = {};
    main.querySelectorAll("details[id], details[data-key]").forEach(function (d) { if (d.open) openDetails[d.id || d.dataset.key] = true; });
    // What the page showed once (a new token or secret) is not in the
    // re-read: keep it in its slot.
    var once = {};
    main.querySelectorAll("[data-once]").forEach(function (el) { once[el.dataset.once] = el; });
    main.innerHTML = fresh.innerHTML;
    main.querySelectorAll("[data-once-slot]").forEach(function (slot) {
      var el = once[slot.dataset.onceSlot];
      if (el) slot.replaceWith(el);
    });
    main.dataset.path = fresh.dataset.path || main.dataset.path;
    main.querySelectorAll("input, select, textarea").forEach(function (el) {
      var k = keyOf(el);
      if (k in kept) {
        if (el.type === "checkbox") el.checked = kept[k]; else el.value = kept[k];
      }
    });
    main.querySelectorAll("details[id], details[data-key]").forEach(function (d) { if (openDetails[d.id || d.dataset.key]) d.open = true; });
    showTypeFields();
    if (focusKey) {
      var target = null;
      main.querySelectorAll("input, select, textarea, button, a").forEach(function (el) { if (!target && keyOf(el) === focusKey) target = el; });
      if (target) {
        target.focus({ preventScroll: true });
        try { if (selStart !== null) target.setSelectionRange(selStart, selEnd); } catch (e) { /* not a text field */ }
      }
    }
  }

  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 150);
  }

  function startLive() {
    var team = document.body.dataset.team;
    if (!team || !window.EventSource) return;
    var url = "/teams/" + encodeURIComponent(team) + "/live";
    if (document.body.dataset.after) url += "?after=" + encodeURIComponent(document.body.dataset.after);
    var es = new EventSource(url);
    es.onopen = function () { document.body.dataset.live = "connected"; };
    es.onmessage = function () { schedule(); };
    es.onerror = function () { document.body.dataset.live = "reconnecting"; };
  }

  function startPoll() {
    setInterval(function () {
      var main = document.getElementById("main");
      if (main && main.dataset.poll && !document.hidden) schedule();
    }, 2000);
  }

  function init() {
    showTypeFields();
    startLive();
    startPoll();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
