// The live dashboard's page, compiled into the binary so that the one-file install serves it
// with nothing beside it: one HTML document with its style and script inline, no fonts, no
// CDN, so it works offline and behind any firewall. It reads its numbers from the feed at
// <its path>/feed (server-sent events, one frame a second: DashboardFeed) and draws the
// requests-per-second graph on a canvas. Text from the server (fault messages) is inserted as
// text, never as markup.

/// The dashboard's HTML document.
enum DashboardPage {
    /// Only the inline style and script, and requests to this origin (the feed).
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
        + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="color-scheme" content="light dark">
        <link rel="icon" href="data:,">
        <title>Moonwire · Live</title>
        <style>
        :root {
          --bg: #f5f6f8; --panel: #ffffff; --text: #1d2330; --muted: #6b7385; --line: #e3e6ec;
          --accent: #4f6bed; --accent-soft: rgba(79, 107, 237, .14); --ok: #1f9d62; --warn: #c98a0b; --bad: #d64545;
          --shadow: 0 1px 2px rgba(20, 28, 45, .06), 0 4px 14px rgba(20, 28, 45, .05);
        }
        @media (prefers-color-scheme: dark) {
          :root {
            --bg: #0f131a; --panel: #171c25; --text: #e6e9ef; --muted: #8d96a8; --line: #262d3a;
            --accent: #7d93ff; --accent-soft: rgba(125, 147, 255, .16); --ok: #3ecf8e; --warn: #f0b43c; --bad: #f06a6a;
            --shadow: 0 1px 2px rgba(0, 0, 0, .3);
          }
        }
        * { box-sizing: border-box; }
        body { margin: 0; background: var(--bg); color: var(--text);
          font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
        header { display: flex; align-items: center; gap: 14px; padding: 18px 28px; border-bottom: 1px solid var(--line);
          background: var(--panel); }
        .mark { width: 26px; height: 26px; border-radius: 50%; background: radial-gradient(circle at 35% 35%, var(--panel) 0 38%, var(--accent) 40%); }
        h1 { font-size: 17px; margin: 0; font-weight: 600; letter-spacing: .2px; }
        h1 span { color: var(--muted); font-weight: 400; }
        .status { margin-left: auto; display: flex; align-items: center; gap: 8px; color: var(--muted); font-size: 13px; }
        .dot { width: 9px; height: 9px; border-radius: 50%; background: var(--muted); }
        .live .dot { background: var(--ok); box-shadow: 0 0 0 4px rgba(62, 207, 142, .18); }
        .down .dot { background: var(--bad); }
        main { padding: 24px 28px 40px; max-width: 1280px; margin: 0 auto; display: grid; gap: 18px; }
        .tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 14px; }
        .card { background: var(--panel); border: 1px solid var(--line); border-radius: 12px; box-shadow: var(--shadow); padding: 16px 18px; }
        .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em; }
        .value { font-size: 28px; font-weight: 600; margin-top: 6px; font-variant-numeric: tabular-nums; white-space: nowrap; }
        .value small { font-size: 14px; color: var(--muted); font-weight: 500; margin-left: 3px; }
        .sub { color: var(--muted); font-size: 12.5px; margin-top: 4px; font-variant-numeric: tabular-nums; min-height: 18px; }
        .bad { color: var(--bad); } .warn { color: var(--warn); }
        .chart-head { display: flex; align-items: baseline; justify-content: space-between; margin-bottom: 10px; }
        .chart-head h2, .table-card h2 { font-size: 14px; margin: 0; font-weight: 600; }
        .chart-card { display: flex; flex-direction: column; }
        .chart-box { flex: 1; position: relative; min-height: 200px; }
        canvas { position: absolute; inset: 0; width: 100%; height: 100%; display: block; }
        .row { display: grid; grid-template-columns: 2fr 1fr; gap: 14px; }
        @media (max-width: 860px) { .row { grid-template-columns: 1fr; } }
        .kinds { display: grid; gap: 8px; margin-top: 12px; }
        .kind { display: flex; justify-content: space-between; font-variant-numeric: tabular-nums; }
        .kind span:first-child { color: var(--muted); }
        table { width: 100%; border-collapse: collapse; margin-top: 10px; font-size: 13px; }
        th { text-align: left; color: var(--muted); font-weight: 500; font-size: 12px; text-transform: uppercase;
          letter-spacing: .05em; padding: 6px 8px; border-bottom: 1px solid var(--line); }
        td { padding: 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
        td.msg { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; word-break: break-word; }
        td.when { white-space: nowrap; color: var(--muted); font-variant-numeric: tabular-nums; }
        .pill { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 500; }
        .pill.fault { background: rgba(214, 69, 69, .14); color: var(--bad); }
        .pill.reload { background: var(--accent-soft); color: var(--accent); }
        .pill.failed { background: rgba(201, 138, 11, .16); color: var(--warn); }
        .empty { color: var(--muted); text-align: center; padding: 22px 8px; }
        footer { color: var(--muted); font-size: 12px; text-align: center; }
        </style>
        </head>
        <body>
        <header>
          <div class="mark" aria-hidden="true"></div>
          <h1>Moonwire <span>live dashboard</span></h1>
          <div class="status" id="status"><span class="dot"></span><span id="status-text">connecting…</span></div>
        </header>
        <main>
          <section class="tiles" aria-label="current figures">
            <div class="card"><div class="label">Requests / s</div><div class="value" id="rps">–</div><div class="sub" id="rps-sub"></div></div>
            <div class="card"><div class="label">Requests</div><div class="value" id="requests-total" data-value="0">–</div><div class="sub" id="requests-sub"></div></div>
            <div class="card"><div class="label">Latency p50</div><div class="value" id="p50">–</div><div class="sub" id="latency-sub"></div></div>
            <div class="card"><div class="label">Latency p90 / p99</div><div class="value" id="p90">–</div><div class="sub" id="p99"></div></div>
            <div class="card"><div class="label">Connections</div><div class="value" id="connections">–</div><div class="sub" id="websockets"></div></div>
            <div class="card"><div class="label">Errors / s</div><div class="value" id="errors">–</div><div class="sub" id="errors-sub"></div></div>
          </section>
          <section class="row">
            <div class="card chart-card">
              <div class="chart-head"><h2>Requests per second</h2><span class="label" id="chart-note">last 2 minutes</span></div>
              <div class="chart-box"><canvas id="chart" aria-label="requests per second over the last two minutes"></canvas></div>
            </div>
            <div class="card">
              <div class="label">Lua faults</div><div class="value" id="faults">–</div>
              <div class="kinds" id="fault-kinds"></div>
              <div class="label" style="margin-top:18px">Reloads</div><div class="value" id="reloads">–</div>
            </div>
          </section>
          <section class="card table-card">
            <h2>Recent faults and reloads</h2>
            <table>
              <thead><tr><th>Time</th><th>Event</th><th>Message</th><th>Where</th></tr></thead>
              <tbody id="events"><tr><td colspan="4" class="empty">Nothing yet: no fault, no reload.</td></tr></tbody>
            </table>
          </section>
          <footer>Sampled once a second from the server's metrics · latency estimated from the histogram's buckets · uptime <span id="uptime">–</span></footer>
        </main>
        <script>
        "use strict";
        const $ = (id) => document.getElementById(id);
        const KINDS = [["error", "Script errors"], ["timeout", "Timeouts"], ["cpu_budget", "CPU budget"], ["memory", "Memory"], ["os_exit", "os.exit blocked"]];
        let history = [];

        function number(n) {
          if (n === undefined || n === null) return "–";
          if (n >= 1e6) return (n / 1e6).toFixed(n >= 1e7 ? 0 : 1) + "M";
          if (n >= 1e4) return (n / 1e3).toFixed(n >= 1e5 ? 0 : 1) + "k";
          return Number.isInteger(n) ? String(n) : n.toFixed(n < 10 ? 1 : 0);
        }
        function seconds(s) {
          if (s === undefined || s === null) return "–";
          if (s < 0.001) return (s * 1000).toFixed(2) + "<small>ms</small>";
          if (s < 1) return (s * 1000).toFixed(s < 0.01 ? 1 : 0) + "<small>ms</small>";
          return s.toFixed(2) + "<small>s</small>";
        }
        function duration(s) {
          const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
          return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m + "m " + Math.floor(s % 60) + "s";
        }
        function setStatus(kind, text) {
          $("status").className = "status " + kind;
          $("status-text").textContent = text;
        }

        function render(f) {
          history = f.history || [];
          $("rps").textContent = number(f.rps);
          const peak = history.length ? Math.max(...history) : 0;
          $("rps-sub").textContent = "peak " + number(peak) + " over 2 min";
          $("requests-total").textContent = number(f.requests);
          $("requests-total").dataset.value = String(f.requests);
          $("requests-sub").textContent = number(f.status["2xx"]) + " 2xx · " + number(f.status["3xx"]) + " 3xx";
          $("p50").innerHTML = seconds(f.p50);
          $("latency-sub").textContent = f.p50 === undefined ? "no request in the last " + f.latencyWindow + " s" : "last " + f.latencyWindow + " s";
          $("p90").innerHTML = seconds(f.p90);
          $("p99").innerHTML = "p99 " + seconds(f.p99);
          $("connections").textContent = number(f.connections);
          $("websockets").textContent = number(f.websockets) + " WebSocket" + (f.websockets === 1 ? "" : "s");
          const errorRate = f.clientErrorsPerSecond + f.serverErrorsPerSecond;
          $("errors").textContent = number(errorRate);
          $("errors").className = "value" + (f.serverErrorsPerSecond > 0 ? " bad" : errorRate > 0 ? " warn" : "");
          $("errors-sub").textContent = number(f.status["4xx"]) + " 4xx · " + number(f.status["5xx"]) + " 5xx in all";
          const faults = Object.values(f.faults || {}).reduce((a, b) => a + b, 0);
          $("faults").textContent = number(faults);
          $("faults").className = "value" + (faults > 0 ? " bad" : "");
          const kinds = $("fault-kinds");
          kinds.replaceChildren(...KINDS.map(([key, name]) => {
            const row = document.createElement("div");
            row.className = "kind";
            const a = document.createElement("span"), b = document.createElement("span");
            a.textContent = name;
            b.textContent = number((f.faults || {})[key] || 0);
            row.append(a, b);
            return row;
          }));
          $("reloads").textContent = number(f.reloads);
          $("uptime").textContent = duration(f.uptime);
          renderEvents(f.events || []);
          draw();
          setStatus("live", "live · " + new Date(f.time).toLocaleTimeString());
        }

        function renderEvents(events) {
          const body = $("events");
          if (!events.length) return;
          body.replaceChildren(...events.slice().reverse().map((e) => {
            const tr = document.createElement("tr");
            const when = document.createElement("td");
            when.className = "when";
            when.textContent = new Date(e.time).toLocaleTimeString();
            const what = document.createElement("td");
            const pill = document.createElement("span");
            pill.className = "pill " + (e.type === "reload" && e.kind === "failed" ? "failed" : e.type);
            pill.textContent = e.type === "reload" ? (e.kind === "ok" ? "reload" : "reload failed") : e.kind.replace("_", " ");
            what.append(pill);
            const msg = document.createElement("td");
            msg.className = "msg";
            msg.textContent = e.message;
            const where = document.createElement("td");
            where.textContent = e.detail;
            tr.append(when, what, msg, where);
            return tr;
          }));
        }

        function draw() {
          const canvas = $("chart");
          const ratio = window.devicePixelRatio || 1;
          const width = canvas.clientWidth, height = canvas.clientHeight;
          if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
            canvas.width = Math.round(width * ratio);
            canvas.height = Math.round(height * ratio);
          }
          const g = canvas.getContext("2d");
          g.setTransform(ratio, 0, 0, ratio, 0, 0);
          g.clearRect(0, 0, width, height);
          const style = getComputedStyle(document.documentElement);
          const accent = style.getPropertyValue("--accent").trim(), soft = style.getPropertyValue("--accent-soft").trim();
          const line = style.getPropertyValue("--line").trim(), muted = style.getPropertyValue("--muted").trim();
          const slots = 120, top = 10, bottom = height - 18, left = 0, right = width - 44;
          const max = Math.max(1, ...history) * 1.15;
          g.font = "11px system-ui, sans-serif";
          g.fillStyle = muted;
          g.strokeStyle = line;
          g.lineWidth = 1;
          for (const share of [0, 0.5, 1]) {
            const y = Math.round(bottom - (bottom - top) * share) + 0.5;
            g.beginPath(); g.moveTo(left, y); g.lineTo(right, y); g.stroke();
            g.fillText(number(max * share), right + 6, y + 4);
          }
          g.fillText("−2 min", left, height - 3);
          g.fillText("now", right - 20, height - 3);
          if (history.length < 2) return;
          const x = (i) => left + (right - left) * (slots - history.length + i) / (slots - 1);
          const y = (v) => bottom - (bottom - top) * v / max;
          g.beginPath();
          history.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
          g.lineTo(x(history.length - 1), bottom);
          g.lineTo(x(0), bottom);
          g.closePath();
          g.fillStyle = soft;
          g.fill();
          g.beginPath();
          history.forEach((v, i) => (i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v))));
          g.strokeStyle = accent;
          g.lineWidth = 2;
          g.lineJoin = "round";
          g.stroke();
        }

        function connect() {
          const feed = new EventSource(location.pathname.replace(/\/+$/, "") + "/feed");
          feed.onmessage = (event) => render(JSON.parse(event.data));
          feed.onerror = () => setStatus("down", "reconnecting…");
        }
        window.addEventListener("resize", draw);
        draw();
        connect();
        </script>
        </body>
        </html>
        """#
}
