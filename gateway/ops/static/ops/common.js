/* Helpers shared by the console pages. Figures reach the page only through textContent,
   never as HTML, so a circuit or job name can never become markup. */
"use strict";

window.Consulta = (function () {
  const numbers = new Intl.NumberFormat();

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function row(cells, className) {
    const tr = el("tr", null, className);
    cells.forEach(function (cell) { tr.appendChild(cell); });
    return tr;
  }

  function fill(tableId, rows) {
    document.getElementById(tableId).tBodies[0].replaceChildren(...rows);
  }

  function num(value) {
    return value === null || value === undefined ? "—" : numbers.format(value);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 90) return seconds.toFixed(1) + " s";
    return Math.round(seconds / 60) + " min";
  }

  /* Two durations with one unit, so "p50 / p95" fits a tile: "320 / 900 ms", "1.3 / 4.2 s". */
  function pair(first, second) {
    if (second < 1) return Math.round(first * 1000) + " / " + Math.round(second * 1000) + " ms";
    if (second < 90) return first.toFixed(1) + " / " + second.toFixed(1) + " s";
    return Math.round(first / 60) + " / " + Math.round(second / 60) + " min";
  }

  /* Time axis labels as 24-hour clock times, the way operators read a timetable. */
  function clockTicks(u, splits) {
    return splits.map(function (t) {
      return new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
    });
  }

  function percent(share) {
    return (share * 100).toFixed(1) + " %";
  }

  function clock(iso) {
    return iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : "—";
  }

  function status(text, stale) {
    const node = document.getElementById("status");
    node.textContent = text;
    node.classList.toggle("stale", Boolean(stale));
  }

  /* A signed-out session (expired, or the password changed) goes back to the sign-in page. */
  function toLogin() {
    const here = window.location.pathname + window.location.search;
    window.location.assign("/ops/login?next=" + encodeURIComponent(here));
  }

  async function getJSON(url) {
    const response = await fetch(url, {
      headers: { Accept: "application/json" },
      cache: "no-store",
      credentials: "same-origin",
    });
    if (response.status === 401) {
      toLogin();
      throw new Error("signed out");
    }
    if (!response.ok) throw new Error("the server answered " + response.status);
    return response.json();
  }

  /* Runs `task` now and then every `everyMs`, never two at once; `now()` skips the wait. */
  function poller(task, everyMs) {
    let timer = null;
    let running = false;
    async function tick() {
      clearTimeout(timer);
      if (running) return;
      running = true;
      try {
        await task();
      } finally {
        running = false;
        timer = setTimeout(tick, everyMs);
      }
    }
    tick();
    return { now: tick };
  }

  /* uPlot needs a pixel width: follow the panel's width as the window changes. */
  function fitWidth(chart, container) {
    const observer = new ResizeObserver(function () {
      chart.setSize({ width: container.clientWidth, height: chart.height });
    });
    observer.observe(container);
    return observer;
  }

  return { el, row, fill, num, duration, pair, clockTicks, percent, clock, status, getJSON, poller, fitWidth };
})();
