// The dashboard: reads the API with the key in local storage (or from the URL fragment
// `#key=…`, which the browser never sends to the server), refreshes every 5 seconds.
"use strict";
(function () {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("key")) {
    localStorage.setItem("credit-risk-key", params.get("key"));
    history.replaceState(null, "", location.pathname);
  }
  let key = localStorage.getItem("credit-risk-key") || "";
  const $ = (id) => document.getElementById(id);
  $("key").value = key;
  $("keyform").addEventListener("submit", (e) => {
    e.preventDefault();
    key = $("key").value.trim();
    localStorage.setItem("credit-risk-key", key);
    refresh();
  });
  document.querySelectorAll("nav button").forEach((b) =>
    b.addEventListener("click", () => {
      document.querySelectorAll("nav button, .tab").forEach((x) => x.classList.remove("active"));
      b.classList.add("active");
      $(b.dataset.tab).classList.add("active");
    }));

  async function api(path, opts) {
    const r = await fetch(path, Object.assign({ headers: { "X-API-Key": key, "Content-Type": "application/json" } }, opts || {}));
    const body = await r.json().catch(() => ({}));
    if (!r.ok && r.status !== 202) throw Object.assign(new Error(body.message || r.statusText), { status: r.status });
    return body;
  }
  const inr = (minor) => "₹" + (minor / 100).toLocaleString("en-IN", { maximumFractionDigits: 0 });
  const pct = (x) => (100 * x).toFixed(2) + "%";
  const charts = {};
  function chart(id, config) {
    if (charts[id]) {
      charts[id].data = config.data;
      charts[id].update("none");
    } else {
      config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: true }, config.options || {});
      charts[id] = new Chart($(id), config);
    }
    $(id).dataset.points = String(config.data.datasets.reduce((n, d) => n + d.data.length, 0));
  }
  function alerts(list) {
    $("alerts").innerHTML = "";
    list.forEach(([cls, text]) => {
      const d = document.createElement("div");
      d.className = cls;
      d.textContent = text;
      $("alerts").appendChild(d);
    });
  }

  // Prometheus text → {name: [{labels, value}]} for the few series the page shows.
  function metrics(text) {
    const out = {};
    text.split("\n").forEach((line) => {
      const m = line.match(/^([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+|NaN|\+Inf)$/);
      if (!m) return;
      (out[m[1]] = out[m[1]] || []).push({ labels: m[2] || "", value: Number(m[3]) });
    });
    return out;
  }
  function quantile(buckets, q) {
    if (!buckets || buckets.length === 0) return null;
    const rows = buckets.map((b) => {
      const le = (b.labels.match(/le="([^"]+)"/) || [])[1];
      return { le: le === "+Inf" ? Infinity : Number(le), n: b.value };
    }).filter((b) => !Number.isNaN(b.le)).sort((a, b) => a.le - b.le);
    const total = rows[rows.length - 1].n;
    if (!total) return null;
    const hit = rows.find((r) => r.n >= q * total);
    return hit && Number.isFinite(hit.le) ? hit.le : null;
  }
  let lastDate = null, lastDateSeen = Date.now(), drift = null, driftAt = 0;

  async function refresh() {
    if (!key) {
      alerts([["info", "Paste an analyst or admin API key above (credit-risk demo prints them)."]]);
      return;
    }
    try {
      const [summary, trendAnswer, npa, vintage, conc, models] = await Promise.all([
        api("/api/portfolio/summary"),
        api("/api/portfolio/trend?days=365"),
        api("/api/portfolio/npa-analysis"),
        api("/api/portfolio/vintage"),
        api("/api/portfolio/risk-concentration"),
        api("/api/models"),
      ]);
      const s = summary.summary;
      const trend = trendAnswer.points;
      const m = metrics(await fetch("/metrics", { headers: { "X-API-Key": key } }).then((r) => r.text()).catch(() => ""));
      const latency = m.scorer_end_to_end_seconds_bucket;
      const p50 = quantile(latency, 0.5), p99 = quantile(latency, 0.99);
      const lag = (m.scorer_consumer_lag_messages || []).concat(m.aggregator_consumer_lag_messages || [])
        .reduce((n, x) => n + Math.max(0, x.value), 0);
      if (Date.now() - driftAt > 60000) {
        drift = await api("/api/models/drift?applications=5000").catch(() => null);
        driftAt = Date.now();
      }
      if (s.business_date !== lastDate) { lastDate = s.business_date; lastDateSeen = Date.now(); }
      $("asof").textContent = "as of " + s.business_date;
      const tiles = [
        ["Loans (active)", s.total_loans.toLocaleString() + " (" + s.active_loans.toLocaleString() + ")"],
        ["Outstanding", inr(s.outstanding)],
        ["Gross NPA", inr(s.npa_amount) + " · " + pct(s.npa_ratio)],
        ["Net NPA", pct(s.net_npa_ratio)],
        ["Provision coverage", pct(s.provision_coverage)],
        ["PAR30 / PAR90", pct(s.par30) + " / " + pct(s.par90)],
        ["IFRS 9 ECL", inr(s.ecl)],
        ["Default rate", pct(s.default_rate)],
        ["Approval rate", pct(s.approval_rate)],
        ["Referral rate", pct(s.referral_rate)],
        ["Champion", (models.serving && models.serving.champion) || "none"],
        ["Decision latency p50 / p99", p50 === null ? "n/a" : (1000 * p50).toFixed(0) + " / " + (p99 === null ? ">" : (1000 * p99).toFixed(0)) + " ms"],
        ["Consumer lag", lag.toLocaleString() + " messages"],
      ];
      $("tiles").innerHTML = "";
      tiles.forEach(([l, v]) => {
        const t = document.createElement("div");
        t.className = "tile";
        t.innerHTML = '<div class="v"></div><div class="l"></div>';
        t.querySelector(".v").textContent = v;
        t.querySelector(".l").textContent = l;
        $("tiles").appendChild(t);
      });
      const days = trend.map((p) => p.business_date);
      chart("trend", { type: "line", data: { labels: days, datasets: [
        { label: "NPA ratio %", data: trend.map((p) => 100 * p.npa_ratio), pointRadius: 0 },
        { label: "PAR30 %", data: trend.map((p) => 100 * p.par30), pointRadius: 0 },
        { label: "PAR90 %", data: trend.map((p) => 100 * p.par90), pointRadius: 0 },
      ] } });
      chart("approval", { type: "line", data: { labels: days, datasets: [
        { label: "approval rate %", data: trend.map((p) => 100 * p.approval_rate), pointRadius: 0, yAxisID: "y" },
        { label: "referral rate %", data: trend.map((p) => 100 * p.referral_rate), pointRadius: 0, yAxisID: "y" },
        { label: "ECL (₹ lakh)", data: trend.map((p) => p.ecl / 1e7), pointRadius: 0, yAxisID: "y1" },
      ] }, options: { scales: { y1: { position: "right" } } } });
      chart("dpd", { type: "doughnut", options: { aspectRatio: 2 }, data: { labels: npa.by_dpd_bucket.map((g) => g.key), datasets: [
        { label: "outstanding", data: npa.by_dpd_bucket.map((g) => g.outstanding / 100) },
      ] } });
      chart("classes", { type: "bar", data: { labels: npa.by_class.map((g) => g.key), datasets: [
        { label: "outstanding (₹ lakh)", data: npa.by_class.map((g) => g.outstanding / 1e7) },
        { label: "provisions (₹ lakh)", data: npa.by_class.map((g) => g.provisions / 1e7) },
      ] } });
      const recent = vintage.vintages.filter((v) => v.ever_90.length >= 3).slice(-6);
      const mob = Math.max(0, ...recent.map((v) => v.ever_90.length));
      chart("vintage", { type: "line", data: { labels: Array.from({ length: mob }, (_, i) => i + 1), datasets:
        recent.map((v) => ({ label: v.vintage.slice(0, 7), data: v.ever_90.map((x) => 100 * x), pointRadius: 0 })) } });
      chart("purpose", { type: "bar", data: { labels: conc.by_purpose.groups.map((g) => g.key), datasets: [
        { label: "outstanding (₹ lakh)", data: conc.by_purpose.groups.map((g) => g.outstanding / 1e7) },
        { label: "NPA (₹ lakh)", data: conc.by_purpose.groups.map((g) => g.npa_amount / 1e7) },
      ] } });
      if (drift && drift.features) {
        const top = drift.features.slice(0, 12);
        chart("psi", { type: "bar", data: { labels: top.map((f) => f.feature), datasets: [
          { label: "PSI (0.1 moderate, 0.25 significant)", data: top.map((f) => f.psi) },
        ] } });
      }
      const body = $("modeltable").querySelector("tbody");
      body.innerHTML = "";
      models.models.forEach((m) => {
        const tr = document.createElement("tr");
        [m.model_version, m.alias || "", m.metrics && m.metrics.out_of_time ? m.metrics.out_of_time.auc.toFixed(4) : "", m.rows, m.created_at]
          .forEach((v) => { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
        body.appendChild(tr);
      });
      const warn = [];
      if (s.npa_ratio > 0.05) warn.push(["", "Gross NPA ratio " + pct(s.npa_ratio) + " is above 5%"]);
      if (trend.length === 0) warn.push(["", "No business day has been closed yet"]);
      if (Date.now() - lastDateSeen > 10 * 60000) warn.push(["", "No day-end for 10 minutes (last closed " + lastDate + ")"]);
      const drifting = drift && drift.features && drift.applications >= 500
        ? drift.features.filter((f) => f.psi >= 0.25) : [];
      if (drifting.length) warn.push(["", "PSI ≥ 0.25 on " + drifting.map((f) => f.feature).join(", ") + ": review the model"]);
      if (lag > 10000) warn.push(["", "Consumer lag " + lag.toLocaleString() + " messages"]);
      alerts(warn);
      document.body.dataset.loaded = "true";
    } catch (e) {
      alerts([["", e.status === 401 || e.status === 403 ? "The key is not accepted for the analytics (" + e.message + ")" : "Cannot load the portfolio: " + e.message]]);
    }
  }

  $("applyform").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = {
      customer_id: f.get("customer_id"), loan_amount: Number(f.get("loan_amount")),
      loan_tenure_months: Number(f.get("loan_tenure_months")), interest_rate: Number(f.get("interest_rate")),
      loan_purpose: f.get("loan_purpose"),
    };
    const out = $("decision");
    out.textContent = "Deciding…";
    try {
      const d = await api("/api/loans/apply", { method: "POST", body: JSON.stringify(body) });
      if (!d.credit_score) { out.textContent = "Published; not decided yet: " + d.poll; return; }
      out.innerHTML = "<h3></h3><p></p><ul></ul>";
      out.querySelector("h3").textContent = d.decision + " · score " + d.credit_score + " · grade " + d.grade;
      out.querySelector("p").textContent = "PD " + pct(d.risk_probability) + " · EMI " + inr(d.emi) + " · FOIR " + pct(d.foir) + " · model " + d.model_version;
      d.reasons.forEach((r) => {
        const li = document.createElement("li");
        li.textContent = r.code + " " + r.feature + " = " + r.value + " (" + r.points + " points)";
        out.querySelector("ul").appendChild(li);
      });
      d.rule_hits.forEach((h) => { const li = document.createElement("li"); li.textContent = "rule: " + h; out.querySelector("ul").appendChild(li); });
    } catch (err) {
      out.textContent = "Refused: " + err.message;
    }
  });

  refresh();
  setInterval(refresh, 5000);
})();
