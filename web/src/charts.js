// Charts of a run, drawn with uPlot (web/package.json pins it; the
// coordinator embeds it into report.html and serves it to the live
// dashboard). Why uPlot: ~50 KB minified, canvas, built for long time
// series (a 1-hour run at 1-s intervals is 3,600 points per series and
// draws in milliseconds), with zoom (drag), values on hover (the legend
// follows the cursor) and series toggles (click a legend entry) built in.
// ECharts (~1 MB) or Chart.js (~200 KB, slower on long series) would
// dominate a report's size.
//
// Input: the chart data the coordinator writes (see
// coordinator's report html module): plain arrays, times in seconds from
// the start instant, latencies in microseconds.
//
// One global, LoadgenCharts, so report.js and live.js (plain scripts, no
// bundler) share it.
(function () {
  "use strict";

  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173"];
  const PHASE_FILL = { warmup: "rgba(255, 200, 0, 0.10)", cooldown: "rgba(120, 120, 120, 0.08)", drain: "rgba(0, 120, 255, 0.07)" };
  const WINDOW_FILL = "rgba(220, 0, 0, 0.12)";

  function color(i) { return PALETTE[i % PALETTE.length]; }

  function fmtMs(us) {
    if (us == null || !isFinite(us)) return "–";
    const ms = us / 1000;
    return ms >= 100 ? ms.toFixed(0) + " ms" : ms >= 1 ? ms.toFixed(2) + " ms" : ms.toFixed(3) + " ms";
  }

  function fmtRate(v) {
    if (v == null || !isFinite(v)) return "–";
    return v >= 1e6 ? (v / 1e6).toFixed(2) + " M/s" : v >= 1e3 ? (v / 1e3).toFixed(1) + " k/s" : v.toFixed(0) + "/s";
  }

  // Axis ticks: exact to the unit below a million (3,010 msg/s, not 3.0 k/s).
  function fmtRateTick(v) {
    if (v == null || !isFinite(v)) return "";
    return v >= 1e6 ? (v / 1e6).toFixed(2) + " M" : Math.round(v).toLocaleString("en");
  }

  function isPow10(x) {
    const l = Math.log10(x);
    return Math.abs(l - Math.round(l)) < 1e-9;
  }

  function fmtPercentile(x) {
    // x = 1/(1-q): 10 -> 90 %, 1000 -> 99.9 %.
    const q = 1 - 1 / x;
    const digits = Math.max(0, Math.round(Math.log10(x)) - 2);
    return (q * 100).toFixed(Math.min(digits, 5)) + " %";
  }

  // Shades phases (warmup, cooldown, drain) and windows (faults, pauses)
  // behind the series, and draws events (rate changes, ceiling steps) as
  // vertical lines: a uPlot drawClear hook.
  function backdrop(data) {
    return (u) => {
      const ctx = u.ctx;
      const { top, height } = u.bbox;
      const band = (from, to, fill) => {
        const x0 = u.valToPos(from, "x", true);
        const x1 = u.valToPos(to, "x", true);
        ctx.fillStyle = fill;
        ctx.fillRect(Math.min(x0, x1), top, Math.abs(x1 - x0), height);
      };
      ctx.save();
      for (const p of data.phases || []) {
        if (PHASE_FILL[p.name]) band(p.from_s, p.to_s, PHASE_FILL[p.name]);
      }
      for (const w of data.windows || []) band(w.from_s, w.to_s, WINDOW_FILL);
      ctx.strokeStyle = "rgba(0, 0, 0, 0.45)";
      ctx.setLineDash([4, 3]);
      for (const e of data.events || []) {
        const x = Math.round(u.valToPos(e.t_s, "x", true));
        ctx.beginPath();
        ctx.moveTo(x, top);
        ctx.lineTo(x, top + height);
        ctx.stroke();
      }
      ctx.restore();
    };
  }

  function baseOpts(title, width, yLabel, yFmt) {
    return {
      title,
      width,
      height: 300,
      cursor: { drag: { x: true, y: false }, focus: { prox: 16 } },
      legend: { live: true },
      scales: { x: { time: false } },
      axes: [
        { label: "seconds from the start", values: (u, vals) => vals.map((v) => v + " s") },
        { label: yLabel, size: 70, values: (u, vals) => vals.map(yFmt) },
      ],
    };
  }

  // Throughput per group over time: `ts` = {t: [...], series: [{name, values}]}.
  function throughput(el, data, width) {
    const ts = data.throughput;
    const opts = baseOpts("Throughput per group (msg/s)", width, "msg/s", fmtRateTick);
    opts.series = [{ label: "t", value: (u, v) => (v == null ? "–" : v.toFixed(1) + " s") }].concat(
      ts.series.map((s, i) => ({ label: s.name, stroke: color(i), width: 1.5, value: (u, v) => fmtRate(v) })),
    );
    opts.hooks = { drawClear: [backdrop(data)] };
    return new uPlot(opts, [ts.t].concat(ts.series.map((s) => s.values)), el);
  }

  // Latency percentiles over time, one chart per kind (publish response
  // time, end to end): `lat` = {title, t, per, series: [{name, values (µs)}]},
  // `per` series (the reported percentiles) per group.
  function latency(el, data, lat, width) {
    const opts = baseOpts(lat.title, width, "latency", fmtMs);
    opts.scales.y = { distr: 3 };
    const per = lat.per || 3;
    opts.series = [{ label: "t", value: (u, v) => (v == null ? "–" : v.toFixed(1) + " s") }].concat(
      lat.series.map((s, i) => ({
        label: s.name,
        stroke: color(Math.floor(i / per)),
        // Per group, the percentiles in turn: solid, dashed, dotted (as the SVG charts).
        width: (i % per) % 3 === 0 ? 2 : 1.25,
        dash: (i % per) % 3 === 1 ? [6, 3] : (i % per) % 3 === 2 ? [2, 2] : undefined,
        value: (u, v) => fmtMs(v),
      })),
    );
    opts.hooks = { drawClear: [backdrop(data)] };
    return new uPlot(opts, [lat.t].concat(lat.series.map((s) => s.values.map((v) => (v > 0 ? v : null)))), el);
  }

  // The latency distribution: x = 1/(1-q) on a log axis (0 % ... 99.999 %),
  // y = latency on a log axis; `sp` = {title, series: [{name, x, us}]}
  // (each group has its own quantile points: put them on one x).
  function spectrum(el, sp, width) {
    const xs = Array.from(new Set([].concat(...sp.series.map((s) => s.x)))).sort((a, b) => a - b);
    const cols = sp.series.map((s) => {
      const at = new Map(s.x.map((x, i) => [x, s.us[i]]));
      return xs.map((x) => (at.has(x) && at.get(x) > 0 ? at.get(x) : null));
    });
    const opts = {
      title: sp.title,
      width,
      height: 320,
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: false, distr: 3 }, y: { distr: 3 } },
      axes: [
        { label: "percentile", values: (u, vals) => vals.map((v) => (v >= 1 && isPow10(v) ? fmtPercentile(v) : "")) },
        { label: "latency", size: 70, values: (u, vals) => vals.map(fmtMs) },
      ],
      series: [{ label: "percentile", value: (u, v) => (v == null ? "–" : fmtPercentile(v)) }].concat(
        sp.series.map((s, i) => ({ label: s.name, stroke: color(i), width: 1.5, spanGaps: true, value: (u, v) => fmtMs(v) })),
      ),
    };
    return new uPlot(opts, [xs].concat(cols), el);
  }

  // A ceiling search: achieved rate and p99 against the offered rate, per step.
  function ceiling(el, c, width) {
    const steps = c.steps.slice().sort((a, b) => a.target - b.target);
    const opts = {
      title: "Ceiling search: achieved rate and p99 per step",
      width,
      height: 320,
      scales: { x: { time: false }, rate: {}, lat: { distr: 3 } },
      axes: [
        { label: "offered (target) msg/s", values: (u, vals) => vals.map(fmtRateTick) },
        { scale: "rate", label: "achieved msg/s", size: 70, values: (u, vals) => vals.map(fmtRateTick) },
        { scale: "lat", side: 1, label: "p99", size: 70, values: (u, vals) => vals.map(fmtMs), grid: { show: false } },
      ],
      series: [
        { label: "target", value: (u, v) => fmtRate(v) },
        { label: "achieved", scale: "rate", stroke: color(0), width: 2, points: { size: 7 }, value: (u, v) => fmtRate(v) },
        { label: "p99", scale: "lat", stroke: color(1), width: 1.5, points: { size: 6 }, value: (u, v) => fmtMs(v) },
        { label: "verdict", show: false, value: (u, v, si, i) => (i == null ? "–" : steps[i].verdict) },
      ],
    };
    return new uPlot(
      opts,
      [steps.map((s) => s.target), steps.map((s) => s.achieved), steps.map((s) => (s.p99_us > 0 ? s.p99_us : null)), steps.map(() => 0)],
      el,
    );
  }

  // A row's latency at percentile `label` ("p99.9"): report.json's
  // `percentiles_us`, else the named fields of older rows.
  function rowPercentile(r, label) {
    if (r.percentiles_us && r.percentiles_us[label] != null) return r.percentiles_us[label];
    return { p50: r.p50_us, p95: r.p95_us, p99: r.p99_us, "p99.9": r.p999_us }[label];
  }

  // The chart data from a run model: `groups` [{name, role}], `percentiles`
  // (labels: the scenario's `report.percentiles`; p50, p99, p99.9 when
  // absent) and `intervals` (report.json's rows: t_s, group, role,
  // rate_msgs_per_s, percentiles_us), plus what passes through (phases,
  // windows, events, spectra, ceiling). report.html and the live dashboard
  // both call it, so both draw the same rows the same way.
  function fromModel(m) {
    if (m.columns) m = Object.assign({}, m, fromColumns(m.columns, m.intervals));
    const key = (r) => r.group + "\u0000" + r.role;
    const groups = (m.groups || []).map((g) => ({ name: g.name, role: g.role }));
    const index = new Map(groups.map((g, i) => [key({ group: g.name, role: g.role }), i]));
    const times = [];
    const at = new Map();
    for (const r of m.intervals || []) {
      if (!index.has(key(r))) {
        index.set(key(r), groups.length);
        groups.push({ name: r.group, role: r.role });
      }
      if (!at.has(r.t_s)) {
        at.set(r.t_s, times.length);
        times.push(r.t_s);
      }
    }
    const col = () => groups.map(() => new Array(times.length).fill(null));
    const pcts = m.percentiles && m.percentiles.length ? m.percentiles : ["p50", "p99", "p99.9"];
    const rate = col();
    const lats = pcts.map(col);
    for (const r of m.intervals || []) {
      const g = index.get(key(r)), i = at.get(r.t_s);
      rate[g][i] = r.rate_msgs_per_s;
      pcts.forEach((p, k) => {
        const v = rowPercentile(r, p);
        lats[k][g][i] = v == null ? null : v;
      });
    }
    const label = (g) => g.name + " (" + g.role + ")";
    const lat = (role, what) => {
      const series = [];
      groups.forEach((g, i) => {
        if (g.role !== role) return;
        pcts.forEach((p, k) => series.push({ name: g.name + " " + p, values: lats[k][i] }));
      });
      return { title: what + " (" + pcts.join(", ") + ")", t: times, per: pcts.length, series };
    };
    return {
      phases: m.phases || [],
      windows: m.windows || [],
      events: m.events || [],
      throughput: { t: times, series: groups.map((g, i) => ({ name: label(g), values: rate[i] })) },
      latency: [
        lat("producer", "publish_response per interval: from the intended send to the ack"),
        lat("consumer", "e2e_service per interval: from the actual send to the receipt"),
      ],
      spectra: m.spectra || [],
      ceiling: m.ceiling || null,
    };
  }

  // report.html's compact form: one time axis and per-group columns
  // (rate, and `lat`: a column per percentile label), turned back into
  // rows (plus any live rows).
  function fromColumns(c, rows) {
    const out = [];
    for (const s of c.series) {
      const labels = Object.keys(s.lat || {});
      c.t.forEach((t, i) => {
        if (s.rate[i] == null && labels.every((p) => s.lat[p][i] == null)) return;
        const percentiles_us = {};
        labels.forEach((p) => (percentiles_us[p] = s.lat[p][i]));
        out.push({ t_s: t, group: s.group, role: s.role, rate_msgs_per_s: s.rate[i], percentiles_us });
      });
    }
    return { intervals: out.concat(rows || []), groups: c.series.map((s) => ({ name: s.group, role: s.role })) };
  }

  // Draws every chart of `data` into `root` (report.html and the dashboard).
  function drawAll(root, data) {
    const width = Math.max(480, Math.min(1200, root.clientWidth || 960));
    const add = (id) => {
      const div = document.createElement("div");
      div.className = "chart";
      div.id = id;
      root.appendChild(div);
      return div;
    };
    const charts = [];
    if (data.throughput && data.throughput.series.length) charts.push(throughput(add("chart-throughput"), data, width));
    (data.latency || []).forEach((lat, i) => {
      if (lat.series.length) charts.push(latency(add("chart-latency-" + i), data, lat, width));
    });
    (data.spectra || []).forEach((sp, i) => {
      if (sp.series.length) charts.push(spectrum(add("chart-spectrum-" + i), sp, width));
    });
    if (data.ceiling && data.ceiling.steps.length) charts.push(ceiling(add("chart-ceiling"), data.ceiling, width));
    return charts;
  }

  window.LoadgenCharts = { fromModel, drawAll, throughput, latency, spectrum, ceiling, fmtMs, fmtRate, fmtPercentile };
})();
