// The live dashboard (`coordinator run … --ui ADDR`): the run model from
// /state, then one update per merged interval from /events (server-sent
// events), drawn with the same LoadgenCharts.fromModel as report.html.
// Controls post to /control; the coordinator answers each with what it
// did or why it refused. A token in the page's URL (?token=…) goes along
// with every request (the coordinator asks for it off loopback).
(function () {
  "use strict";
  const C = window.LoadgenCharts;
  const token = new URLSearchParams(location.search).get("token");
  const withToken = (path) => (token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path);
  let model = null;
  let charts = [];
  let shape = "";

  function text(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  function table(id, head, rows) {
    const el = document.getElementById(id);
    if (!el) return;
    const esc = (v) => String(v == null ? "–" : v).replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
    el.innerHTML =
      "<thead><tr>" + head.map((h) => "<th>" + esc(h) + "</th>").join("") + "</tr></thead><tbody>" +
      rows.map((r) => "<tr>" + r.map((c) => "<td>" + esc(c) + "</td>").join("") + "</tr>").join("") + "</tbody>";
  }

  // Spans paused by run control (a pause to the next resume or stop, or to now).
  function pauseWindows(events, now) {
    const out = [];
    let from = null;
    for (const e of events || []) {
      if (e.kind === "pause" && from === null) from = e.t_s;
      else if ((e.kind === "resume" || e.kind === "stop") && from !== null) {
        out.push({ from_s: from, to_s: e.t_s });
        from = null;
      }
    }
    if (from !== null) out.push({ from_s: from, to_s: Math.max(from, now || from) });
    return out;
  }

  function render() {
    model.windows = pauseWindows(model.events, model.elapsed_s);
    const data = C.fromModel(model);
    // Same series and markers as before: new points only (uPlot setData
    // keeps zoom); a new marker draws the charts again.
    const now = JSON.stringify([data.throughput.series.map((s) => s.name), data.latency.map((l) => l.series.length),
      (model.events || []).length]);
    const root = document.getElementById("charts");
    if (now !== shape || charts.length === 0) {
      charts.forEach((c) => c.destroy());
      root.innerHTML = "";
      charts = C.drawAll(root, data);
      shape = now;
    } else {
      let k = 0;
      if (data.throughput.series.length) charts[k++].setData([data.throughput.t].concat(data.throughput.series.map((s) => s.values)), false);
      for (const lat of data.latency) {
        if (!lat.series.length) continue;
        charts[k++].setData([lat.t].concat(lat.series.map((s) => s.values.map((v) => (v > 0 ? v : null)))), false);
      }
      charts.forEach((c) => c.redraw(false, true));
    }
    document.body.dataset.charts = String(charts.length);
    document.body.dataset.intervals = String((model.intervals || []).length);
    text("run-id", model.run_id || "");
    text("scenario", model.scenario || "");
    text("phase", model.phase || "");
    text("elapsed", model.elapsed_s != null ? model.elapsed_s.toFixed(1) + " s" : "");
    text("verdict", model.verdict || "running");
    text("target", model.total_rate != null ? C.fmtRate(model.total_rate) : "–");
    table("agents", ["agent", "address", "status", "clock offset ± error", "CPU %", "RSS MB"],
      (model.agents || []).map((a) => [a.id, a.address, a.status,
        a.clock_offset_us != null ? (a.clock_offset_us / 1000).toFixed(2) + " ± " + (a.clock_error_us / 1000).toFixed(2) + " ms" : null,
        a.cpu_percent != null ? a.cpu_percent.toFixed(0) : null, a.rss_mb != null ? a.rss_mb.toFixed(1) : null]));
    table("subscriptions", ["topic", "subscription", "received", "lost", "duplicated", "per consumer"],
      (model.subscriptions || []).map((s) => [s.topic, s.subscription, s.received, s.lost, s.duplicated,
        (s.consumers || []).map((c) => c.name + ": " + c.received).join(", ")]));
    const notes = document.getElementById("notes");
    if (notes) notes.innerHTML = (model.notes || []).map((n) => "<li>" + n.replace(/[&<>]/g, "") + "</li>").join("");
  }

  function apply(update) {
    model.intervals = (model.intervals || []).concat(update.intervals || []);
    for (const k of ["phase", "elapsed_s", "agents", "subscriptions", "verdict", "total_rate", "phases"]) {
      if (update[k] !== undefined) model[k] = update[k];
    }
    if (update.notes) model.notes = (model.notes || []).concat(update.notes);
    if (update.events) model.events = (model.events || []).concat(update.events);
    render();
  }

  async function control(body) {
    const status = document.getElementById("control-status");
    try {
      const r = await fetch(withToken("/control"), { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      const answer = await r.text();
      status.textContent = (r.ok ? "done: " : "refused: ") + answer;
      status.className = r.ok ? "ok" : "refused";
    } catch (e) {
      status.textContent = "no answer: " + e;
      status.className = "refused";
    }
  }

  // The group chosen in #group ("" = every group): a rate is then the
  // total, split in the scenario's proportions; stop always takes the run.
  function withGroup(body) {
    const g = document.getElementById("group").value;
    return g && body.action !== "stop" ? Object.assign({ group: g }, body) : body;
  }

  function groupChoices() {
    const select = document.getElementById("group");
    if (select.options.length > 1) return;
    for (const g of model.groups || []) {
      if (g.role !== "producer") continue;
      const o = document.createElement("option");
      o.value = g.name;
      o.textContent = g.name;
      select.appendChild(o);
    }
  }

  function wire() {
    const rate = document.getElementById("rate");
    document.getElementById("set-rate").addEventListener("click", () => control(withGroup({ action: "rate", rate: Number(rate.value) })));
    for (const a of ["pause", "resume", "stop"]) {
      document.getElementById(a).addEventListener("click", () => control(withGroup({ action: a })));
    }
  }

  async function start() {
    wire();
    const r = await fetch(withToken("/state"));
    model = await r.json();
    groupChoices();
    render();
    const events = new EventSource(withToken("/events"));
    events.addEventListener("update", (e) => apply(JSON.parse(e.data)));
    // This page fell behind the pushes: read the whole model again.
    events.addEventListener("reload", async () => {
      model = await (await fetch(withToken("/state"))).json();
      render();
    });
    events.addEventListener("end", () => {
      text("connection", "run over");
      events.close();
    });
    events.onerror = () => text("connection", "reconnecting…");
    events.onopen = () => text("connection", "live");
  }

  start().catch((e) => text("connection", "cannot read the run: " + e));
})();
