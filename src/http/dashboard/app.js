// SPDX-License-Identifier: MIT
// The dashboard: polls this daemon's JSON endpoints and draws them. Every
// name shown (cluster, metric, host, app) comes from config or clients, so it
// only ever goes into the page as text (textContent, attribute values), never
// as markup.
"use strict";

const POLL_MS = 2000;
const SLOW_POLL_MS = 10000; // recent apps and the endpoint list change slowly
const HISTORY_POINTS = 900;
const MIN_CHART_SECONDS = 120;
const OPEN_BY_DEFAULT = 6; // with this many clusters or fewer, all start expanded
const MAX_ROWS = 200; // rows shown per side table; the count says how many exist
const SVG_NS = "http://www.w3.org/2000/svg";

const clusters = new Map(); // name -> view state
let serverNowMs = Date.now();
let hasAppRules = false;
let firstRender = true;

function $(id) {
    return document.getElementById(id);
}

function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = String(text);
    return e;
}

function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    return e;
}

async function getJSON(path) {
    const r = await fetch(path, {cache: "no-store", headers: {"Accept": "application/json"}});
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
}

function showProblem(text) {
    const p = $("problem");
    p.textContent = text;
    p.hidden = !text;
}

function fmtNumber(v) {
    if (v === null || v === undefined || !isFinite(v)) return "-";
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    if (Number.isInteger(v)) return String(v);
    return v.toFixed(a >= 100 ? 1 : 3);
}

function fmtDuration(ms) {
    if (ms <= 0) return "expired";
    let s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    if (d > 365) return "more than a year";
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + String(s).padStart(2, "0") + "s";
    return s + "s";
}

// ---- clusters ----

function clusterView(name) {
    let v = clusters.get(name);
    if (v) return v;
    const details = el("details", "cluster");
    details.dataset.cluster = name;
    const summary = el("summary");
    const cname = el("span", "cname", name);
    cname.title = name;
    const chips = el("span", "chips");
    summary.append(cname, chips);
    const detail = el("div", "detail");
    details.append(summary, detail);
    v = {name, details, chips, detail, data: null, hosts: null, history: null, busy: false};
    details.addEventListener("toggle", () => {
        if (details.open) {
            renderDetail(v);
            pollDetail(v);
        }
    });
    clusters.set(name, v);
    return v;
}

function metricState(m) {
    if (!m.HasValue) return "none";
    if (!m.Ok) return "error";
    return m.Value > m.Threshold ? "over" : "ok";
}

function renderChips(v, aggregated) {
    v.chips.replaceChildren();
    for (const m of v.data.Metrics) {
        const state = metricState(m);
        const chip = el("span", "chip " + state);
        chip.dataset.metric = m.Name;
        chip.append(el("span", "mname", m.Metric === "default" ? "metric" : m.Metric));
        // The value exactly as /aggregated-metrics says it, when it has one.
        let shown = aggregated[m.Name];
        if (shown === undefined) shown = "-";
        else if (shown.startsWith("error: ")) shown = "error";
        const value = el("span", "value", shown);
        value.dataset.metric = m.Name;
        chip.append(value, el("span", "thr", "/ " + fmtNumber(m.Threshold)));
        if (state === "ok" || state === "over") {
            const g = el("span", "gauge");
            const fill = el("span");
            const ratio = m.Threshold > 0 ? Math.min(1, Math.max(0, m.Value / m.Threshold)) : 1;
            fill.style.width = Math.round(ratio * 100) + "%";
            g.append(fill);
            chip.append(g);
        }
        chip.title = state === "error" ? m.Error : m.Host ? "set by " + m.Host : "";
        v.chips.append(chip);
    }
}

function chart(series, startS, threshold) {
    const W = 600, H = 90, PAD = 2;
    const s = svg("svg", {class: "chart", viewBox: "0 0 " + W + " " + H, preserveAspectRatio: "none"});
    let max = threshold > 0 ? threshold * 1.25 : 0;
    for (const x of series) if (x !== null && x > max) max = x;
    if (!(max > 0)) max = 1;
    const n = series.length;
    const lastS = startS + n - 1;
    // The window grows with the history held, from 2 minutes to all 15.
    const span = Math.min(HISTORY_POINTS, Math.max(MIN_CHART_SECONDS, n));
    const x0 = lastS - (span - 1);
    const xOf = (t) => ((t - x0) / (span - 1)) * W;
    const yOf = (val) => H - PAD - (val / max) * (H - 2 * PAD);
    let d = "";
    let pen = false;
    for (let i = 0; i < n; i++) {
        const val = series[i];
        if (val === null) {
            pen = false;
            continue;
        }
        d += (pen ? "L" : "M") + xOf(startS + i).toFixed(1) + " " + yOf(val).toFixed(1);
        pen = true;
    }
    if (threshold > 0) {
        const y = yOf(threshold).toFixed(1);
        s.append(svg("line", {class: "threshold", x1: 0, x2: W, y1: y, y2: y}));
    }
    if (d) s.append(svg("path", {class: "line", d}));
    const box = el("div", "chartbox");
    const axis = el("div", "axis");
    axis.append(el("span", "", Math.round(span / 60) + " min ago"), el("span", "", "scale 0 to " + fmtNumber(max) + ", threshold dashed"), el("span", "", "now"));
    box.append(s, axis);
    return box;
}

function hostsTable(m) {
    const t = el("table", "hosts");
    const head = el("tr");
    for (const h of ["host", "value", "age", "probe errors", "error"]) head.append(el("th", "", h));
    const thead = el("thead");
    thead.append(head);
    t.append(thead);
    const body = el("tbody");
    for (const h of m.Hosts) {
        const tr = el("tr", !h.Ok && h.Probed ? "bad" : "");
        tr.append(el("td", "", h.Host + (h.HttpCheck404 ? " (left out: HTTP check 404)" : "")));
        tr.append(el("td", "num", h.Ok ? fmtNumber(h.Value) : "-"));
        tr.append(el("td", "num", h.Probed ? (h.AgeMillis / 1000).toFixed(1) + "s" : "not yet"));
        tr.append(el("td", "num", h.ProbeErrors));
        tr.append(el("td", "err", h.Error));
        body.append(tr);
    }
    if (!m.Hosts.length) {
        const tr = el("tr");
        const td = el("td", "empty", "no probed hosts");
        td.colSpan = 5;
        tr.append(td);
        body.append(tr);
    }
    t.append(body);
    return t;
}

function renderDetail(v) {
    if (!v.details.open || !v.data) return;
    v.detail.replaceChildren();
    for (const m of v.data.Metrics) {
        const box = el("div", "metric");
        const h = el("h3", "", m.Name);
        const sub = !m.HasValue ? "no value" : !m.Ok ? "error: " + m.Error
            : fmtNumber(m.Value) + " of " + fmtNumber(m.Threshold) + (m.Host ? " (" + m.Host + ")" : "");
        h.append(" ", el("span", "sub", sub));
        box.append(h);
        const hist = v.history && v.history.Metrics[m.Metric];
        if (hist) box.append(chart(hist.Values, v.history.Start, m.Threshold));
        const withHosts = v.hosts && v.hosts.Metrics.find((x) => x.Name === m.Name);
        if (withHosts) box.append(hostsTable(withHosts));
        v.detail.append(box);
    }
}

// An expanded cluster's hosts, and the last HISTORY_POINTS seconds of its
// history, asking only for what came after the newest second held.
async function pollDetail(v) {
    if (!v.details.open || v.busy) return;
    v.busy = true;
    try {
        const name = encodeURIComponent(v.name);
        const h = v.history;
        const since = h && h.Start ? h.Start + longest(h) - 1 : 0;
        const [r, hosts] = await Promise.all([
            getJSON("/metrics-history?cluster=" + name + (since ? "&since=" + since : "")),
            getJSON("/cluster-metrics?cluster=" + name)]);
        const c = r.Clusters[v.name];
        if (c) v.history = mergeHistory(h, c, since);
        v.hosts = hosts.Clusters[0] || null;
        renderDetail(v);
    } catch (e) {
        // The cluster may have just left the config; the next poll tells.
    } finally {
        v.busy = false;
    }
}

function longest(h) {
    let n = 0;
    for (const k in h.Metrics) n = Math.max(n, h.Metrics[k].Values.length);
    return n;
}

function mergeHistory(old, c, since) {
    if (!old || !since || !c.Start || c.Start !== since + 1) {
        if (since && c.Start === 0) return old; // nothing new
        return {Start: c.Start, Metrics: c.Metrics};
    }
    const out = {Start: old.Start, Metrics: {}};
    for (const k in c.Metrics) {
        const prev = old.Metrics[k];
        const pad = prev ? prev.Values : new Array(longest(old)).fill(null);
        out.Metrics[k] = {Name: c.Metrics[k].Name, Threshold: c.Metrics[k].Threshold, Values: pad.concat(c.Metrics[k].Values)};
    }
    let n = longest(out);
    if (n > HISTORY_POINTS) {
        const cut = n - HISTORY_POINTS;
        for (const k in out.Metrics) out.Metrics[k].Values = out.Metrics[k].Values.slice(cut);
        out.Start += cut;
    }
    return out;
}

function applyFilter() {
    const f = $("filter").value.trim().toLowerCase();
    const onlyBad = $("only-bad").checked;
    let shown = 0;
    for (const v of clusters.values()) {
        let ok = !f || v.name.toLowerCase().includes(f);
        if (ok && onlyBad && v.data) ok = v.data.Metrics.some((m) => metricState(m) === "over" || metricState(m) === "error");
        v.details.hidden = !ok;
        if (ok) shown++;
    }
    $("cluster-count").textContent = shown === clusters.size ? "(" + clusters.size + ")" : "(" + shown + " of " + clusters.size + ")";
}

function renderClusters(cm, aggregated) {
    const list = $("cluster-list");
    const seen = new Set();
    for (const c of cm.Clusters) {
        seen.add(c.Name);
        const v = clusterView(c.Name);
        v.data = c;
        renderChips(v, aggregated);
        if (firstRender && cm.Clusters.length <= OPEN_BY_DEFAULT) v.details.open = true;
        renderDetail(v);
    }
    for (const [name, v] of clusters) {
        if (!seen.has(name)) {
            v.details.remove();
            clusters.delete(name);
        }
    }
    // The list follows the server's order (sorted by name).
    const order = cm.Clusters.map((c) => clusters.get(c.Name).details);
    let i = 0;
    for (const node of order) {
        if (list.children[i] !== node) list.insertBefore(node, list.children[i] || null);
        i++;
    }
    if (!cm.Clusters.length) list.replaceChildren(el("p", "empty", "no clusters configured"));
    else if (list.firstChild && list.firstChild.tagName === "P") list.firstChild.remove();
    firstRender = false;
    applyFilter();
}

// ---- side tables ----

function fillTable(tbody, rows, cols, emptyText) {
    tbody.replaceChildren();
    for (const r of rows.slice(0, MAX_ROWS)) {
        const tr = el("tr");
        r.forEach((x, i) => tr.append(el("td", cols[i] || "", x)));
        tbody.append(tr);
    }
    if (!rows.length) {
        const tr = el("tr");
        const td = el("td", "empty", emptyText);
        td.colSpan = cols.length;
        tr.append(td);
        tbody.append(tr);
    }
}

function countText(n) {
    return n > MAX_ROWS ? "(" + n + ", first " + MAX_ROWS + " shown)" : "(" + n + ")";
}

function remaining(expireAt) {
    if (!expireAt || expireAt.startsWith("0001-")) return "never";
    return fmtDuration(Date.parse(expireAt) - serverNowMs);
}

function renderApps(apps) {
    const keys = Object.keys(apps).sort();
    $("apps-count").textContent = countText(keys.length);
    fillTable($("apps"), keys.map((k) => [k, apps[k].Ratio, remaining(apps[k].ExpireAt)]), ["", "num", "num"], "none");
}

function renderSkipped(hosts) {
    const keys = Object.keys(hosts).sort();
    $("skipped-count").textContent = countText(keys.length);
    fillTable($("skipped"), keys.map((k) => [k, remaining(hosts[k])]), ["", "num"], "none");
}

function renderRecent(recent) {
    const keys = Object.keys(recent).sort((a, b) => recent[b].CheckedAtEpoch - recent[a].CheckedAtEpoch || (a < b ? -1 : 1));
    $("recent-count").textContent = countText(keys.length);
    const now = serverNowMs / 1000;
    fillTable($("recent"), keys.map((k) => [k, fmtDuration(Math.max(1000, (now - recent[k].CheckedAtEpoch) * 1000)) + " ago"]), ["", "num"], "none in the last 15 minutes");
}

// App rules come from /app-rules when this daemon has it (its /help lists
// it): one row per key, what the rule says in words, and its TTL left.
function ruleText(r) {
    if (!r || typeof r !== "object") return String(r);
    if (r.Exempt) return "exempt from metrics";
    const parts = [];
    const th = r.Thresholds || {}, fa = r.Factors || {};
    for (const m of Object.keys(th).sort()) parts.push(m + " at most " + th[m]);
    for (const m of Object.keys(fa).sort()) parts.push(m + " at most " + fa[m] + " x the cluster's");
    if (Array.isArray(r.Metrics) && r.Metrics.length) parts.push("only " + r.Metrics.join(", "));
    return parts.length ? parts.join("; ") : "-";
}

function renderRules(rules) {
    const keys = rules && typeof rules === "object" && !Array.isArray(rules) ? Object.keys(rules).sort() : [];
    $("rules-count").textContent = countText(keys.length);
    fillTable($("rules"), keys.map((k) => [k, ruleText(rules[k]), remaining(rules[k] && rules[k].ExpireAt)]), ["", "", "num"], "none");
    $("rules-section").hidden = false;
}

function renderLeader(st) {
    $("service-id").textContent = st.ServiceID || "-";
    $("leader").textContent = st.Leader || "unknown";
    $("state").textContent = (st.State || "-") + (st.IsLeader ? " (this node leads)" : "");
}

// ---- polling ----

async function poll() {
    try {
        const [cm, agg, apps, skipped, status] = await Promise.all([
            getJSON("/cluster-metrics?hosts=false"), getJSON("/aggregated-metrics"), getJSON("/throttled-apps"),
            getJSON("/skipped-hosts"), getJSON("/consensus/status")]);
        serverNowMs = cm.Now;
        renderClusters(cm, agg);
        renderApps(apps);
        renderSkipped(skipped);
        renderLeader(status);
        if (hasAppRules) renderRules(await getJSON("/app-rules"));
        for (const v of clusters.values()) pollDetail(v);
        showProblem("");
        $("updated").textContent = "updated " + new Date(serverNowMs).toISOString().slice(11, 19) + " UTC";
    } catch (e) {
        showProblem("cannot reach the daemon: " + e.message + " (retrying)");
    }
}

async function slowPoll() {
    try {
        const help = await getJSON("/help");
        hasAppRules = Array.isArray(help) && help.includes("/app-rules");
        if (!hasAppRules) $("rules-section").hidden = true;
        renderRecent(await getJSON("/recent-apps/15"));
    } catch (e) {
        // poll() reports an unreachable daemon.
    }
}

function setOpen(open) {
    for (const v of clusters.values()) if (open ? !v.details.hidden : true) v.details.open = open;
}

document.addEventListener("DOMContentLoaded", () => {
    $("filter").addEventListener("input", applyFilter);
    $("only-bad").addEventListener("change", applyFilter);
    $("expand-all").addEventListener("click", () => setOpen(true));
    $("collapse-all").addEventListener("click", () => setOpen(false));
    slowPoll().then(poll);
    setInterval(poll, POLL_MS);
    setInterval(slowPoll, SLOW_POLL_MS);
});
