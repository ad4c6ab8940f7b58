/* The live view: polls /ops/live.json every 2 s and updates the page in place. */
"use strict";

(function () {
  const C = window.Consulta;
  const body = document.body;
  const canAct = body.dataset.canAct === "true";
  const COLOURS = { "in:sms": "#1f6feb", "in:ussd": "#8250df", "out:sms": "#1a7f37", "out:ussd": "#0e8a8a" };
  let chart = null;
  let chartKeys = "";
  let resizer = null;
  let shownFailed = "";
  let poll = null;

  function renderAlerts(alerts) {
    const items = alerts.length
      ? alerts.map(function (a) { return C.el("p", a.text, "alert " + a.level); })
      : [C.el("p", "All clear: messages are flowing and workers are alive.", "alert ok")];
    document.getElementById("alerts").replaceChildren(...items);
  }

  function tile(id, text, level, sub) {
    const node = document.getElementById(id);
    node.textContent = text;
    const box = node.closest(".tile");
    box.classList.toggle("warning", level === "warning");
    box.classList.toggle("critical", level === "critical");
    if (sub !== undefined) document.getElementById(id + "-sub").textContent = sub;
  }

  function levelOf(alerts, kind) {
    const found = alerts.find(function (a) { return a.kind === kind; });
    return found ? found.level : null;
  }

  function sums(series, direction) {
    const byChannel = {};
    let total = 0;
    let lastMinute = 0;
    series.forEach(function (s) {
      const [dir, channel] = s.key.split(":");
      if (dir !== direction) return;
      const sum = s.values.reduce(function (a, b) { return a + b; }, 0);
      byChannel[channel] = sum;
      total += sum;
      lastMinute += s.values[s.values.length - 1];
    });
    const parts = Object.keys(byChannel).sort().map(function (c) {
      return c.toUpperCase() + " " + C.num(byChannel[c]);
    });
    return { total, text: parts.join(" · ") + " · " + C.num(lastMinute) + " this minute" };
  }

  function renderTiles(d) {
    const inbound = sums(d.throughput.series, "in");
    const outbound = sums(d.throughput.series, "out");
    tile("t-backlog", C.num(d.backlog), levelOf(d.alerts, "backlog") || levelOf(d.alerts, "stuck"),
      d.oldest_pending_seconds === null ? "in the queues" : "oldest waiting " + C.duration(d.oldest_pending_seconds));
    tile("t-workers", C.num(d.workers.length), d.workers.length ? null : "critical");
    tile("t-in", C.num(inbound.total), null, inbound.text);
    tile("t-out", C.num(outbound.total), null, outbound.text);
    const l = d.latency;
    tile("t-latency", l.count ? C.pair(l.p50, l.p95) : "—", null,
      l.count ? C.num(l.count) + " messages, last " + l.minutes + " min" : "nothing counted in the last " + l.minutes + " min");
    tile("t-failed", C.num(d.failed_jobs.length), d.failed_jobs.length ? "warning" : null);
  }

  function renderChart(throughput) {
    const container = document.getElementById("chart-throughput");
    const data = [throughput.minutes].concat(throughput.series.map(function (s) { return s.values; }));
    const keys = throughput.series.map(function (s) { return s.key; }).join(",");
    if (chart && keys === chartKeys) {
      chart.setData(data);
      return;
    }
    if (chart) chart.destroy();
    if (resizer) resizer.disconnect();
    chartKeys = keys;
    chart = new uPlot({
      width: container.clientWidth,
      height: 260,
      legend: { live: false },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(5, max * 1.15)]; } } },
      axes: [{ values: C.clockTicks }, { label: "messages per minute", size: 60 }],
      series: [{}].concat(throughput.series.map(function (s) {
        const colour = COLOURS[s.key] || "#57606a";
        const out = s.key.startsWith("out:"); // dashed, so the replies never hide the messages in
        return {
          label: s.label,
          stroke: colour,
          width: 2,
          dash: out ? [6, 4] : undefined,
          fill: out ? undefined : colour + "18",
          points: { show: false },
        };
      })),
    }, data, container);
    resizer = C.fitWidth(chart, container);
  }

  function renderQueues(queues) {
    C.fill("queues", queues.map(function (q) {
      return C.row([
        C.el("td", q.name),
        C.el("td", C.num(q.waiting), "num"),
        C.el("td", C.num(q.started), "num"),
        C.el("td", C.num(q.scheduled), "num"),
        C.el("td", C.num(q.failed), "num"),
      ], q.failed ? "hot" : "");
    }));
  }

  function renderWorkers(workers) {
    C.fill("workers", workers.map(function (w) {
      return C.row([
        C.el("td", w.name, "mono"),
        C.el("td", w.queues),
        C.el("td", w.state + (w.current_job ? " (job " + w.current_job.slice(0, 8) + ")" : "")),
        C.el("td", C.num(w.jobs_done), "num"),
        C.el("td", C.num(w.jobs_failed), "num"),
        C.el("td", C.clock(w.last_heartbeat)),
      ]);
    }));
    document.getElementById("workers-empty").hidden = workers.length > 0;
    document.getElementById("workers").hidden = workers.length === 0;
  }

  function renderOutbound(rows) {
    const attention = { failed: true, unknown: true };
    C.fill("outbound", rows.map(function (r) {
      return C.row([
        C.el("td", r.outcome),
        C.el("td", C.num(r.messages), "num"),
        C.el("td", C.num(r.segments), "num"),
      ], attention[r.outcome] && r.messages ? "hot" : "");
    }));
  }

  function actionButton(job, action, label) {
    const button = C.el("button", label, action);
    button.type = "button";
    button.addEventListener("click", function () { act(job, action, button); });
    return button;
  }

  function renderFailed(jobs) {
    const fingerprint = JSON.stringify(jobs);
    if (fingerprint === shownFailed) return; // rebuilding under the pointer would eat a click
    shownFailed = fingerprint;
    C.fill("failed", jobs.map(function (job) {
      const actions = C.el("td", null, "actions");
      if (canAct) {
        actions.append(actionButton(job, "retry", "Retry"), actionButton(job, "discard", "Discard"));
      }
      const tr = C.row([
        C.el("td", C.clock(job.failed_at)),
        C.el("td", job.queue),
        C.el("td", job.call, "mono"),
        C.el("td", job.error, "error-text"),
        actions,
      ]);
      tr.dataset.jobId = job.id;
      return tr;
    }));
    document.getElementById("failed-empty").hidden = jobs.length > 0;
    document.getElementById("failed").hidden = jobs.length === 0;
  }

  function notice(text, ok) {
    const node = document.getElementById("action-result");
    node.textContent = text;
    node.classList.toggle("error", !ok);
    node.hidden = false;
  }

  async function act(job, action, button) {
    if (action === "discard" && !window.confirm("Discard this job for good? It will not run again.")) return;
    button.disabled = true;
    const url = body.dataset.jobsUrl + encodeURIComponent(job.queue) + "/" +
      encodeURIComponent(job.id) + "/" + action;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "X-CSRF-Token": body.dataset.csrf, Accept: "application/json" },
        credentials: "same-origin",
      });
      const answer = await response.json().catch(function () { return {}; });
      notice(answer.message || answer.error || "The server answered " + response.status, response.ok);
    } catch (error) {
      notice("Could not reach the server: " + error.message, false);
    } finally {
      button.disabled = false;
      poll.now();
    }
  }

  async function refresh() {
    try {
      const d = await C.getJSON(body.dataset.liveUrl);
      renderAlerts(d.alerts);
      renderTiles(d);
      renderChart(d.throughput);
      renderQueues(d.queues);
      renderWorkers(d.workers);
      renderOutbound(d.outbound);
      renderFailed(d.failed_jobs);
      C.status("Updated " + C.clock(d.generated_at) + " · refreshes every 2 s");
    } catch (error) {
      C.status("Not updated since the last success (" + error.message + "); retrying…", true);
    }
  }

  poll = C.poller(refresh, 2000);
})();
