/* The count view: polls /ops/count.json every 10 s, and at once when a filter changes. */
"use strict";

(function () {
  const C = window.Consulta;
  const form = document.getElementById("filters");
  if (!form) return; // no consultation yet
  const BELOW = "#d4a017";
  const ABOVE = "#1a7f37";
  let chart = null;
  let poll = null;
  let typing = null;

  function params() {
    return new URLSearchParams(new FormData(form));
  }

  function renderSummary(d) {
    const s = d.summary;
    document.getElementById("c-circuits").textContent = C.num(s.circuits);
    document.getElementById("c-circuits-sub").textContent =
      s.circuits === d.total ? "all circuits" : "matching, of " + C.num(d.total);
    document.getElementById("c-votes").textContent = C.num(s.votes);
    document.getElementById("c-eligible").textContent = "of " + C.num(s.eligible) + " eligible";
    document.getElementById("c-turnout").textContent = C.percent(s.turnout);
    document.getElementById("c-quorum").textContent = C.num(s.below_quorum);
    document.getElementById("c-quorum-sub").textContent =
      "circuits under the " + C.percent(s.quorum) + " quorum";
    document.getElementById("c-quorum").closest(".tile").classList.toggle("warning", s.below_quorum > 0);
  }

  function renderChart(d) {
    const container = document.getElementById("chart-turnout");
    const bins = d.distribution.from_percent;
    const quorum = d.consultation.quorum * 100;
    // An empty band draws no bar rather than a flat line at zero.
    const below = d.distribution.circuits.map(function (n, i) { return n && bins[i] + 10 <= quorum ? n : null; });
    const above = d.distribution.circuits.map(function (n, i) { return n && bins[i] + 10 > quorum ? n : null; });
    const data = [bins.map(function (_, i) { return i; }), below, above];
    document.getElementById("dist-hint").textContent = "· circuits per band of turnout; quorum " + C.percent(d.consultation.quorum);
    if (chart) {
      chart.setData(data);
      return;
    }
    const bars = uPlot.paths.bars({ size: [0.75, 80] });
    const band = function (i) {
      return Number.isInteger(i) && bins[i] !== undefined ? bins[i] + "–" + (bins[i] + 10) + " %" : "";
    };
    chart = new uPlot({
      width: container.clientWidth,
      height: 240,
      legend: { live: false },
      scales: {
        x: { time: false, range: [-0.5, bins.length - 0.5] },
        y: { range: function (u, min, max) { return [0, Math.max(4, max * 1.15)]; } },
      },
      axes: [
        {
          splits: function () { return bins.map(function (_, i) { return i; }); },
          values: function (u, splits) { return splits.map(band); },
        },
        { label: "circuits", size: 50 },
      ],
      series: [
        { label: "turnout band" },
        { label: "below quorum", fill: BELOW, stroke: BELOW, paths: bars, points: { show: false } },
        { label: "quorum reached", fill: ABOVE, stroke: ABOVE, paths: bars, points: { show: false } },
      ],
    }, data, container);
    C.fitWidth(chart, container);
  }

  function meter(circuit) {
    const track = C.el("div", null, "track");
    const fill = C.el("div", null, "fill" + (circuit.below_quorum ? " low" : ""));
    fill.style.width = Math.min(100, circuit.turnout * 100).toFixed(1) + "%";
    track.appendChild(fill);
    const box = C.el("div", null, "meter");
    box.append(track, C.el("span", C.percent(circuit.turnout), "value"));
    const cell = C.el("td");
    cell.appendChild(box);
    return cell;
  }

  function leaders(circuit) {
    const cell = C.el("td");
    const names = circuit.leaders.map(function (o) { return o.option + ". " + o.title + " (" + C.num(o.votes) + ")"; });
    cell.appendChild(C.el("span", names.length ? names.join(" · ") : "no votes yet"));
    if (circuit.tied) cell.appendChild(C.el("span", "tie", "badge warning"));
    if (circuit.below_quorum) cell.appendChild(C.el("span", "below quorum", "badge critical"));
    return cell;
  }

  function renderTable(d) {
    C.fill("circuits", d.circuits.map(function (c) {
      return C.row([
        C.el("td", c.code, "mono"),
        C.el("td", c.name),
        C.el("td", C.num(c.eligible), "num"),
        C.el("td", C.num(c.votes), "num"),
        meter(c),
        leaders(c),
      ]);
    }));
    document.getElementById("rows-hint").textContent = d.shown < d.matching
      ? "· first " + C.num(d.shown) + " of " + C.num(d.matching) + "; narrow the filter to see others"
      : "· " + C.num(d.shown) + " shown";
  }

  async function refresh() {
    const query = params();
    try {
      const d = await C.getJSON(document.body.dataset.countUrl + "?" + query.toString());
      renderSummary(d);
      renderChart(d);
      renderTable(d);
      window.history.replaceState(null, "", "?" + query.toString());
      C.status("Counted " + C.clock(d.generated_at) + " · refreshes every 10 s");
    } catch (error) {
      C.status("Not updated since the last success (" + error.message + "); retrying…", true);
    }
  }

  form.addEventListener("submit", function (event) { event.preventDefault(); poll.now(); });
  form.addEventListener("change", function () { poll.now(); });
  document.getElementById("q").addEventListener("input", function () {
    clearTimeout(typing);
    typing = setTimeout(poll.now, 300);
  });
  poll = C.poller(refresh, 10000);
})();
