// roadie dashboard: confirmations, select-all, and the live graph.
// Loaded as an external file (the Content-Security-Policy allows no inline script).
"use strict";

(function () {
  const root = document.body.dataset.root || "";

  // Forms (or buttons) with data-confirm ask before they post.
  document.addEventListener("submit", function (event) {
    const button = event.submitter;
    const text = (button && button.dataset.confirm) || event.target.dataset.confirm;
    if (text && !window.confirm(text)) {
      event.preventDefault();
    }
  });

  // "Select all" checkboxes tick every row of their table.
  document.querySelectorAll("input.select-all").forEach(function (box) {
    box.addEventListener("change", function () {
      box.closest("table").querySelectorAll("tbody input[type=checkbox]").forEach(function (row) {
        row.checked = box.checked;
      });
    });
  });

  // Live graph: poll /api/stats, plot processed and failed per poll.
  const svg = document.getElementById("live");
  if (!svg) {
    return;
  }
  const NS = "http://www.w3.org/2000/svg";
  const W = 720, H = 200, PAD = 32, KEEP = 60, EVERY_MS = 5000;
  const points = [];
  let last = null;

  function line(cls) {
    const el = document.createElementNS(NS, "polyline");
    el.setAttribute("class", "line " + cls);
    svg.appendChild(el);
    return el;
  }
  const axis = document.createElementNS(NS, "line");
  axis.setAttribute("class", "axis");
  axis.setAttribute("x1", PAD); axis.setAttribute("x2", W - PAD);
  axis.setAttribute("y1", H - PAD); axis.setAttribute("y2", H - PAD);
  svg.appendChild(axis);
  const topLabel = document.createElementNS(NS, "text");
  topLabel.setAttribute("class", "label");
  topLabel.setAttribute("x", PAD); topLabel.setAttribute("y", PAD - 10);
  svg.appendChild(topLabel);
  const processed = line("processed");
  const failed = line("failed");

  function draw() {
    const top = Math.max(1, ...points.map(function (p) { return Math.max(p[0], p[1]); }));
    const step = (W - 2 * PAD) / (KEEP - 1);
    function coords(i) {
      return points.map(function (p, n) {
        const x = PAD + (KEEP - points.length + n) * step;
        const y = H - PAD - (H - 2 * PAD) * (p[i] / top);
        return x.toFixed(1) + "," + y.toFixed(1);
      }).join(" ");
    }
    processed.setAttribute("points", coords(0));
    failed.setAttribute("points", coords(1));
    topLabel.textContent = String(top);
  }

  function update(stats) {
    document.querySelectorAll("[data-stat]").forEach(function (el) {
      const value = stats[el.dataset.stat];
      if (value !== undefined) {
        el.textContent = el.dataset.stat === "default_latency"
          ? Number(value).toFixed(1) + "s" : String(value);
      }
    });
    if (!last) {
      points.push([0, 0]);
    } else {
      points.push([Math.max(0, stats.processed - last.processed),
                   Math.max(0, stats.failed - last.failed)]);
      if (points.length > KEEP) {
        points.shift();
      }
    }
    draw();
    last = stats;
    svg.dataset.polls = String(Number(svg.dataset.polls || 0) + 1);
  }

  function poll() {
    fetch(root + "/api/stats", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (stats) { if (stats) { update(stats); } })
      .catch(function () { /* Redis or network down: try again next time */ })
      .finally(function () { window.setTimeout(poll, EVERY_MS); });
  }
  poll();
})();
