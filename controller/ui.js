"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const key = "intercloud-token";
  let token = "";
  let unlocked = false;
  let revision = currentRevision();

  function currentRevision() {
    const r = $("revision");
    return r ? r.dataset.revision : "";
  }

  // Without an accepted token every action control stays disabled; the
  // API refuses the calls anyway.
  function setUnlocked(on) {
    unlocked = on;
    for (const b of document.querySelectorAll("button.action")) b.disabled = !on;
    const st = $("token-state");
    st.textContent = on ? "actions enabled" : "read-only";
    st.className = on ? "unlocked" : "";
  }

  function show(msg, bad) {
    const r = $("result");
    r.textContent = msg;
    r.className = bad ? "bad" : "ok";
  }

  async function api(method, path, body) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers["Authorization"] = "Bearer " + token;
    const resp = await fetch(path, {
      method: method, headers: headers, cache: "no-store",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await resp.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!resp.ok) throw new Error((data && data.error) || (resp.status + " " + resp.statusText));
    return data;
  }

  async function useToken(t, quiet) {
    token = t;
    try {
      await api("GET", "/v1/auth");
      sessionStorage.setItem(key, t);
      setUnlocked(true);
      if (!quiet) show("token accepted: actions enabled", false);
    } catch (e) {
      token = "";
      sessionStorage.removeItem(key);
      setUnlocked(false);
      if (!quiet) show("token refused: " + e.message, true);
    }
  }

  // refresh re-renders parts of the page from one request (the server
  // reads the status once for all of them), keeping what the operator has
  // typed or chosen in their fields (a revision landing re-renders the
  // controls while someone may be filling them in).
  async function refresh(parts) {
    const resp = await fetch("/ui/fragments?" + parts.map((p) => "part=" + p).join("&"), { cache: "no-store" });
    if (!resp.ok) return;
    const frags = await resp.json();
    for (const part of parts) {
      if (typeof frags[part] === "string") replace(part, frags[part]);
    }
  }

  function replace(part, html) {
    const el = $(part);
    const kept = {};
    el.querySelectorAll("input[id], select[id]").forEach((x) => {
      kept[x.id] = x.type === "checkbox" ? x.checked : x.value;
    });
    el.innerHTML = html;
    for (const [id, v] of Object.entries(kept)) {
      const x = document.getElementById(id);
      if (!x || !el.contains(x)) continue;
      if (x.type === "checkbox") x.checked = v;
      else if (x.tagName !== "SELECT" || [...x.options].some((o) => o.value === v)) x.value = v;
    }
  }

  async function refreshAll() {
    try {
      await refresh(["header", "topology", "charts"]);
      const rev = currentRevision();
      if (rev !== revision) {
        revision = rev;
        await refresh(["history", "controls"]);
        setUnlocked(unlocked);
      }
    } catch (e) {
      // The controller may be restarting: the next tick tries again.
    }
  }

  // tick refreshes the page, one refresh at a time: asked while one runs
  // (an action landing during the timer's), it runs once more after it
  // rather than beside it.
  let running = null, queued = null;
  function tick() {
    if (!running) {
      running = refreshAll().finally(() => { running = null; });
      return running;
    }
    if (!queued) queued = running.then(() => { queued = null; return tick(); });
    return queued;
  }

  // One timer, re-armed when its tick is done: a slow controller slows the
  // refreshes instead of stacking them.
  function every() {
    setTimeout(async () => {
      await tick();
      every();
    }, 5000);
  }

  function diffText(d) {
    const lines = [];
    if (d.pruned) lines.push("(revision " + (d.revision - 1) + " is no longer kept: compared with nothing)");
    if (!d.changes.length) lines.push("no changes from revision " + d.from + " (same content)");
    for (const c of d.changes) {
      lines.push(c.kind + " " + c.object);
      for (const f of c.fields || []) lines.push("    " + f);
    }
    return lines.join("\n");
  }

  // action makes one call and refreshes the page once after it; a call
  // that commits a revision re-renders the history and the controls too.
  async function action(what, call, commits) {
    show(what + "…", false);
    try {
      const res = await call();
      if (commits) revision = "";
      await tick();
      return res;
    } catch (e) {
      show(what + " failed: " + e.message, true);
      return null;
    }
  }

  function applied(what, res) {
    if (!res) return;
    show(res.changed ? what + ": revision " + res.revision + " committed" : what + ": nothing to change (revision " + res.revision + ")", false);
  }

  async function followInvalidation(id) {
    const box = $("inv-progress"), bar = $("inv-bar"), text = $("inv-text");
    box.hidden = false;
    $("inv-id").textContent = id;
    for (;;) {
      let inv;
      try { inv = await api("GET", "/v1/invalidations/" + encodeURIComponent(id)); } catch (e) {
        text.textContent = "cannot follow: " + e.message;
        return;
      }
      bar.max = Math.max(inv.edges.length, 1);
      bar.value = inv.status === "Completed" ? bar.max : inv.done.length;
      text.textContent = inv.status + " · " + inv.done.length + "/" + inv.edges.length + " edges";
      text.className = inv.status === "Completed" ? "ok" : "";
      if (inv.status === "Completed") {
        show("invalidation " + id + " completed on every live edge", false);
        return;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  document.addEventListener("submit", async (ev) => {
    const f = ev.target;
    ev.preventDefault();
    if (f.id === "token-form") {
      await useToken($("token").value.trim(), false);
      $("token").value = "";
    } else if (f.id === "promote-form") {
      const [distribution, group, origin] = $("promote-target").value.split("/");
      const weight = parseInt($("promote-weight").value, 10) || 100;
      const keepCache = $("promote-keep").checked;
      const what = weight < 100 ? "canary " + weight + "% to " + origin : "promote " + origin;
      applied(what, await action(what, () => api("POST", "/v1/promote", { distribution, group, origin, weight, keepCache }), true));
    } else if (f.id === "invalidate-form") {
      const paths = $("invalidate-paths").value.split(/\s+/).filter((p) => p);
      const res = await action("invalidate", () => api("POST", "/v1/invalidations", { distribution: $("invalidate-dist").value, paths }));
      if (res) {
        show("invalidation " + res.id + " created", false);
        followInvalidation(res.id);
      }
    } else if (f.id === "rollback-form") {
      applied("rollback", await action("rollback", () => api("POST", "/v1/rollback", { revision: 0 }), true));
    }
  });

  document.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button.rollback-to");
    if (!b) return;
    const n = parseInt(b.dataset.revision, 10);
    applied("rollback to " + n, await action("rollback to " + n, () => api("POST", "/v1/rollback", { revision: n }), true));
  });

  // <details> toggles do not bubble: listen while capturing.
  document.addEventListener("toggle", async (ev) => {
    const d = ev.target;
    if (!d.classList || !d.classList.contains("diff") || !d.open || d.dataset.loaded) return;
    const pre = d.querySelector("pre");
    try {
      pre.textContent = diffText(await api("GET", "/v1/revisions/" + d.dataset.revision + "/diff"));
      d.dataset.loaded = "1";
    } catch (e) {
      pre.textContent = "cannot load the diff: " + e.message;
    }
  }, true);

  setUnlocked(false);
  const saved = sessionStorage.getItem(key);
  if (saved) useToken(saved, true);
  every();
})();
