// Draws the pacheck HTML report from the JSON blob in #pacheck-data (built by html_data.cpp).
// Every section is drawn independently: one that throws shows its error in place and the others
// still render. After drawing, #pacheck-check receives a JSON self-check (charts drawn, charts
// without data, errors) that .ci/html-check.sh reads from the headless browser's DOM.
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("pacheck-data").textContent);
  var LATEST = DATA.latest;
  var STATUSES = ["Ok", "Fail", "NotSupported", "Skipped"];
  var KERNEL_COLORS = { v1: "#1f77b4", hip: "#ff7f0e", asm: "#2ca02c", auto: "#9467bd" };
  var SPARE_COLORS = ["#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728"];
  var CLASSES = [["layout", "layout"], ["kv_dtype", "KV dtype"], ["scale", "KV scale"],
                 ["options", "options"], ["gqa", "GQA"], ["q_len", "q_len"], ["family", "batch and table"]];
  var tables = [];  // non-Chart.js plots (heatmaps) for the self-check: {id, cells}

  // ---- helpers ----------------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") e.className = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c !== null && c !== undefined) e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined) return "n/a";
    if (typeof v !== "number") return String(v);
    if (v === 0) return "0";
    var a = Math.abs(v);
    return a >= 1e4 || a < 1e-3 ? v.toExponential(digits || 2) : String(+v.toPrecision(digits || 3));
  }
  function pct(v) { return v === null || v === undefined ? "n/a" : (100 * v).toFixed(1) + "%"; }
  function uniq(xs) { return xs.filter(function (x, i) { return xs.indexOf(x) === i; }); }
  function natural(a, b) {
    var na = parseFloat(String(a).replace(/^[^0-9.-]*/, "")), nb = parseFloat(String(b).replace(/^[^0-9.-]*/, ""));
    if (!isNaN(na) && !isNaN(nb) && na !== nb) return na - nb;
    return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
  }
  function basename(p) { return String(p).replace(/^.*\//, ""); }
  var spare = 0, assigned = {};
  function color(kernel) {
    if (KERNEL_COLORS[kernel]) return KERNEL_COLORS[kernel];
    if (!assigned[kernel]) assigned[kernel] = SPARE_COLORS[spare++ % SPARE_COLORS.length];
    return assigned[kernel];
  }
  function kernelsOf(records) { return uniq(records.map(function (r) { return r.path; })); }
  function featureValues(r, cls) {
    var v = r.features ? r.features[cls] : undefined;
    if (v === undefined) return [];
    return Array.isArray(v) ? v : [v];
  }
  // Charts render without animation so the page is complete when the headless check reads it.
  function chart(parent, id, config, tall) {
    var canvas = el("canvas", { id: id });
    parent.appendChild(el("div", { cls: "chart-box" + (tall ? " tall" : "") }, [canvas]));
    config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: false },
                                   config.options || {});
    return new Chart(canvas.getContext("2d"), config);
  }
  function guarded(sectionId, bodyId, draw) {
    try {
      draw(document.getElementById(bodyId));
    } catch (e) {
      window.pacheckErrors.push(sectionId + ": " + (e && e.stack ? e.stack.split("\n")[0] : e));
      document.getElementById(bodyId).appendChild(
        el("div", { cls: "section-error", text: "This section could not be drawn: " + e }));
    }
  }

  // ---- summary ----------------------------------------------------------------------------------
  function drawSummary(body) {
    var c = LATEST.context, s = LATEST.summary, dev = c.device || {};
    document.getElementById("subtitle").textContent =
      basename(LATEST.name) + " · started " + c.started_utc + " · rendered " + DATA.generated_utc +
      " by pacheck " + DATA.pacheck_version + (DATA.history.length > 1 ? " · newest of " + DATA.history.length + " reports" : "");
    if (!LATEST.complete)
      body.appendChild(el("div", { cls: "banner", text: "Incomplete run: read from a .partial file (the run crashed or is still going). Counts cover the records written so far." }));
    if (s.interrupted)
      body.appendChild(el("div", { cls: "banner", text: "Interrupted (SIGINT): the records before the interruption are complete." }));
    var rows = [
      ["commit", c.git_commit], ["device", dev.name + " / " + dev.arch + " (" + dev.cu_count + " CUs, warp " + dev.warp_size + ", " + dev.native_fp8 + ")"],
      ["backend", c.backend + (c.backend_reason ? " (" + c.backend_reason + ")" : "")], ["suite", c.suite],
      ["seed", String(c.seed)], ["started", c.started_utc], ["paths", (c.paths || []).join(", ")],
      ["pacheck", c.pacheck_version + ", " + c.compiler], ["runtime", c.runtime_version + " / driver " + c.driver_version],
      ["cases", s.cases + " cases, " + s.records + " records"],
      ["elapsed", s.elapsed_ms === null ? "n/a (incomplete)" : fmt(s.elapsed_ms / 1000, 3) + " s"]];
    body.appendChild(el("div", { cls: "ctx" }, rows.map(function (r) {
      return el("div", {}, [el("span", { cls: "k", text: r[0] }), el("span", { cls: "v", text: r[1] })]);
    })));
    body.appendChild(el("div", { cls: "tiles" }, STATUSES.map(function (st) {
      var n = s[st] || 0;
      return el("div", { cls: "tile " + st + (n ? "" : " zero") },
                [el("div", { cls: "n", text: String(n) }), el("div", { text: st })]);
    })));
  }

  // ---- pass matrix ------------------------------------------------------------------------------
  var failureFilter = null;  // {kernel, cls, value} or null
  function matrixCell(records, k, cls, label, value) {
    var ok = 0, fail = 0, other = 0, first = null;
    records.forEach(function (r) {
      if (r.path !== k || featureValues(r, cls).indexOf(value) < 0) return;
      if (r.status === "Ok") ok++;
      else if (r.status === "Fail") { fail++; if (first === null) first = r.failure; }
      else other++;
    });
    var td = el("td", { cls: fail ? "cell-fail" : ok ? "cell-ok" : "cell-none",
                        title: k + " · " + label + " " + value + ": " + ok + " Ok, " + fail + " Fail, " + other + " not supported/skipped" });
    if (ok) td.appendChild(el("span", { cls: "c-ok", text: ok + "✓" }));
    if (fail) {
      if (ok) td.appendChild(document.createTextNode(" "));
      td.appendChild(el("a", { cls: "c-fail", href: "#fail-" + first, text: fail + "✗", "data-count": String(fail),
                               "data-filter": JSON.stringify({ kernel: k, cls: cls, value: value }),
                               onclick: function (ev) { ev.preventDefault(); showFailures({ kernel: k, cls: cls, value: value }, first); } }));
    }
    if (other) td.appendChild(el("span", { cls: "c-ns", text: (ok || fail ? " " : "") + other + "·" }));
    if (!ok && !fail && !other) td.textContent = "–";
    return td;
  }
  // One small table per feature class, side by side: a single kernel × all-values table is far
  // wider than a screen.
  function drawMatrix(body) {
    var records = LATEST.records, kernels = kernelsOf(records);
    if (!records.length) { body.appendChild(el("div", { cls: "note", text: "No records." })); return; }
    var wrap = el("div", { cls: "matrix-wrap" });
    body.appendChild(wrap);
    CLASSES.forEach(function (c) {
      var values = [];
      records.forEach(function (r) { values = values.concat(featureValues(r, c[0])); });
      values = uniq(values).sort(natural);
      if (!values.length) return;
      var head = el("tr", {}, [el("th", { text: "kernel" })].concat(values.map(function (v) { return el("th", { text: v }); })));
      var rows = kernels.map(function (k) {
        return el("tr", {}, [el("td", { cls: "k" }, [el("span", { cls: "badge", style: "background:" + color(k), text: k })])]
          .concat(values.map(function (v) { return matrixCell(records, k, c[0], c[1], v); })));
      });
      wrap.appendChild(el("table", { cls: "matrix" }, [el("caption", { text: c[1] }), el("thead", {}, [head]), el("tbody", {}, rows)]));
    });
  }

  // ---- failures ---------------------------------------------------------------------------------
  function copyText(text, button) {
    function done(ok) { button.textContent = ok ? "copied" : "select + Ctrl-C"; setTimeout(function () { button.textContent = "copy"; }, 1500); }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
      return;
    }
    var ta = el("textarea", { style: "position:fixed;left:-9999px" });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    done(ok);
  }
  function drawFailures(body) {
    var fs = LATEST.failures;
    if (!fs.length) { body.appendChild(el("div", { cls: "note", text: "No failures." })); return; }
    body.appendChild(el("div", { cls: "filter", id: "failure-filter" }));
    fs.forEach(function (f) {
      var feats = CLASSES.map(function (c) { return featureValues(f, c[0]).join("+"); }).filter(Boolean).join(" · ");
      var button = el("button", { cls: "copy", type: "button", text: "copy" });
      button.addEventListener("click", function () { copyText(f.replay, button); });
      var dl = el("dl", {}, [
        el("dt", { text: "coordinates" }), el("dd", { cls: "mono", text: f.coords || "n/a (no worst element)" }),
        el("dt", { text: "case" }), el("dd", { cls: "mono", text: (f.name ? f.name + ": " : "") + f.vars }),
        el("dt", { text: "features" }), el("dd", { text: feats }),
        el("dt", { text: "tolerance" }), el("dd", { text: "atol " + fmt(f.atol) + ", rtol " + fmt(f.rtol) + "; max_abs_err " + fmt(f.max_abs_err) +
                                                    ", max_err_norm " + fmt(f.max_err_norm) + ", rel_rms " + fmt(f.rel_rms) + ", outside " + pct(f.frac_outside) }),
        el("dt", { text: "dispatcher" }), el("dd", { text: f.decision || "n/a" }),
        el("dt", { text: "replay" }), el("dd", {}, [el("div", { cls: "replay-row" }, [el("pre", { cls: "replay", text: f.replay }), button])])]);
      body.appendChild(el("div", { cls: "failure", id: "fail-" + f.id, "data-kernel": f.path }, [
        el("div", { cls: "head" }, [
          el("span", { cls: "badge", style: "background:" + color(f.path), text: f.path + (f.ran && f.ran !== f.path ? " → " + f.ran : "") }),
          el("strong", { text: f.metric || "Fail" }),
          el("span", { cls: "mono", text: "#" + f.case_index + " " + f.slug })]),
        el("div", { cls: "msg mono", text: f.message }), dl]));
    });
    showFailures(null, null);
  }
  function matches(f, filter) {
    return !filter || (f.path === filter.kernel && featureValues(f, filter.cls).indexOf(filter.value) >= 0);
  }
  function showFailures(filter, scrollTo) {
    failureFilter = filter;
    var shown = 0;
    LATEST.failures.forEach(function (f) {
      var node = document.getElementById("fail-" + f.id);
      var on = matches(f, filter);
      if (node) node.style.display = on ? "" : "none";
      if (on) shown++;
    });
    var bar = document.getElementById("failure-filter");
    if (!bar) return;
    bar.textContent = "";
    if (filter) {
      bar.appendChild(document.createTextNode("Showing " + shown + " of " + LATEST.failures.length + " failures: kernel " +
                                              filter.kernel + ", " + filter.cls + " = " + filter.value + " "));
      bar.appendChild(el("button", { type: "button", text: "show all", onclick: function () { showFailures(null, null); } }));
    } else {
      bar.appendChild(document.createTextNode(LATEST.failures.length + " failing records. Click a ✗ count in the matrix to filter."));
    }
    if (scrollTo !== null && scrollTo !== undefined) {
      history.replaceState(null, "", "#fail-" + scrollTo);
      var target = document.getElementById("fail-" + scrollTo);
      if (target) target.scrollIntoView();
    }
  }

  // ---- error against tolerance ------------------------------------------------------------------
  var BIN_LO = -4, BIN_HI = 1, BIN_STEP = 0.25;
  function binLabel(v) {
    if (v >= 1e-3) return String(+v.toPrecision(2));
    var e = Math.floor(Math.log10(v) + 1e-9);
    return String(+(v / Math.pow(10, e)).toPrecision(2)) + "e" + e;
  }
  function edgeBins() {
    var bins = [{ label: "< 1e-4", lo: -Infinity, hi: BIN_LO }];
    for (var x = BIN_LO; x < BIN_HI - 1e-9; x += BIN_STEP)
      bins.push({ label: binLabel(Math.pow(10, x)), lo: x, hi: x + BIN_STEP });
    bins.push({ label: "≥ 10 / NaN", lo: BIN_HI, hi: Infinity });
    return bins;
  }
  function binOf(r, bins) {
    if (r.edge_note) return bins.length - 1;
    if (r.edge === null || r.edge === undefined) return -1;
    var x = r.edge > 0 ? Math.log10(r.edge) : -Infinity;
    for (var i = 0; i < bins.length; i++) if (x >= bins[i].lo && x < bins[i].hi) return i;
    return bins.length - 1;
  }
  function quantile(sorted, q) {
    if (!sorted.length) return null;
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  }
  // Shades the bins past the tolerance edge, so "how close to failing" reads at a glance.
  var failZone = {
    id: "pacheckFailZone",
    beforeDatasetsDraw: function (ch, args, opts) {
      if (opts.fromIndex === undefined) return;
      var x = ch.scales.x, area = ch.chartArea;
      var left = (x.getPixelForValue(opts.fromIndex - 1) + x.getPixelForValue(opts.fromIndex)) / 2;
      ch.ctx.save();
      ch.ctx.fillStyle = "rgba(198, 40, 40, 0.08)";
      ch.ctx.fillRect(left, area.top, area.right - left, area.bottom - area.top);
      ch.ctx.fillStyle = "#c62828";
      ch.ctx.fillText("fails (> atol + rtol·|ref|)", left + 6, area.top + 12);
      ch.ctx.restore();
    }
  };
  function drawEdge(body) {
    var bins = edgeBins(), records = LATEST.records, kernels = kernelsOf(records);
    var graded = records.filter(function (r) { return binOf(r, bins) >= 0; });
    if (!graded.length) { body.appendChild(el("div", { cls: "note", text: "No record has a numeric verdict." })); return; }
    var firstFail = bins.findIndex(function (b) { return b.lo >= 0; });
    var datasets = kernels.map(function (k) {
      var counts = bins.map(function () { return 0; });
      graded.forEach(function (r) { if (r.path === k) counts[binOf(r, bins)]++; });
      return { label: k, backgroundColor: color(k), data: counts.map(function (n) { return n || null; }) };
    }).filter(function (d) { return d.data.some(function (v) { return v !== null; }); });
    chart(body, "chart-edge", {
      type: "bar",
      data: { labels: bins.map(function (b) { return b.label; }), datasets: datasets },
      options: { plugins: { pacheckFailZone: { fromIndex: firstFail },
                            title: { display: true, text: "records per share of tolerance used (log bins; log count)" } },
                 scales: { y: { type: "logarithmic", min: 0.7, title: { display: true, text: "records" },
                               ticks: { autoSkip: false, callback: function (v) { var m = v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9));
                                                                 return [1, 2, 5].some(function (x) { return Math.abs(m - x) < 1e-6; }) ? String(v) : ""; } } },
                           x: { title: { display: true, text: "|out − ref| / (atol + rtol·|ref|)" } } } },
      plugins: [failZone]
    }, true);
    var head = el("tr", {}, ["kernel", "graded", "Ok", "Fail", "median", "p95", "max of Ok", "Ok above 0.5", "closest passing case"].map(function (h) { return el("th", { text: h }); }));
    var rows = kernels.map(function (k) {
      var mine = graded.filter(function (r) { return r.path === k; });
      var oks = mine.filter(function (r) { return r.status === "Ok" && r.edge !== null; });
      var edges = mine.filter(function (r) { return r.edge !== null; }).map(function (r) { return r.edge; }).sort(function (a, b) { return a - b; });
      var closest = oks.reduce(function (best, r) { return !best || r.edge > best.edge ? r : best; }, null);
      return el("tr", {}, [el("td", { cls: "k", text: k }), el("td", { text: String(mine.length) }), el("td", { text: String(oks.length) }),
        el("td", { text: String(mine.filter(function (r) { return r.status === "Fail"; }).length) }),
        el("td", { text: fmt(quantile(edges, 0.5)) }), el("td", { text: fmt(quantile(edges, 0.95)) }),
        el("td", { text: closest ? fmt(closest.edge) : "n/a" }),
        el("td", { text: String(oks.filter(function (r) { return r.edge > 0.5; }).length) }),
        el("td", { cls: "mono", text: closest ? closest.slug : "" })]);
    });
    body.appendChild(el("h3", { text: "Per kernel" }));
    body.appendChild(el("table", { cls: "stats" }, [el("thead", {}, [head]), el("tbody", {}, rows)]));
    var ungraded = records.length - graded.length;
    if (ungraded) body.appendChild(el("div", { cls: "note", text: ungraded + " records have no numeric verdict (not run, or failed before comparing) and are not plotted." }));
  }

  // ---- bench ------------------------------------------------------------------------------------
  function shapeKey(b) { return [b.model, b.kv_dtype, b.num_seqs, b.context].join("|"); }
  // The dispatcher's regret per shape: as recorded, else chosen/fastest − 1 from the medians.
  function regrets(bench) {
    var shapes = {};
    bench.forEach(function (b) { (shapes[shapeKey(b)] = shapes[shapeKey(b)] || []).push(b); });
    return Object.keys(shapes).map(function (key) {
      var entries = shapes[key], b0 = entries[0];
      var fastest = entries.reduce(function (a, b) { return b.median_ms < a.median_ms ? b : a; });
      var chosen = entries.filter(function (b) { return b.kernel === b0.chosen; })[0];
      var recorded = entries.filter(function (b) { return typeof b.regret === "number"; })[0];
      var regret = recorded ? recorded.regret : chosen && fastest.median_ms > 0 ? chosen.median_ms / fastest.median_ms - 1 : null;
      return { model: b0.model, kv_dtype: b0.kv_dtype, num_seqs: b0.num_seqs, context: b0.context,
               chosen: b0.chosen, fastest: b0.fastest || fastest.kernel, regret: regret };
    });
  }
  function heatColor(r) {
    if (r === null) return "#f3f3f3";
    var t = Math.max(0, Math.min(1, r / 0.5));  // 50% slower than the fastest = full red
    return "hsl(" + Math.round(120 * (1 - t)) + ", 65%, " + Math.round(88 - 18 * t) + "%)";
  }
  function drawBench(body) {
    var bench = LATEST.bench || [];
    if (!bench.length) return;
    document.getElementById("bench").hidden = false;
    var timings = uniq(bench.map(function (b) { return b.timing; }));
    body.appendChild(el("div", { cls: "note", text: "Timing: " + timings.join(", ") +
      (timings.indexOf("host") >= 0 ? " (host wall clock of the twins: not comparable with GPU timings)" : "") +
      ". Fraction of stream = achieved bandwidth / the device's measured stream bandwidth." }));
    body.appendChild(el("h3", { text: "Bandwidth fraction vs concurrency" }));
    var sorted = bench.slice().sort(function (a, b) {
      return a.model < b.model ? -1 : a.model > b.model ? 1 : a.kv_dtype < b.kv_dtype ? -1 : a.kv_dtype > b.kv_dtype ? 1 : a.context - b.context;
    });
    var groups = uniq(sorted.map(function (b) { return b.model + " · " + b.kv_dtype + " · ctx " + b.context; }));
    var grid = el("div", { cls: "charts" });
    body.appendChild(grid);
    groups.forEach(function (g, gi) {
      var mine = bench.filter(function (b) { return b.model + " · " + b.kv_dtype + " · ctx " + b.context === g; });
      var seqs = uniq(mine.map(function (b) { return b.num_seqs; })).sort(function (a, b) { return a - b; });
      var datasets = kernelsOf(mine.map(function (b) { return { path: b.kernel }; })).map(function (k) {
        return { label: k, borderColor: color(k), backgroundColor: color(k), tension: 0.15, spanGaps: true,
                 data: seqs.map(function (s) {
                   var e = mine.filter(function (b) { return b.kernel === k && b.num_seqs === s; })[0];
                   return e && typeof e.fraction_of_stream === "number" ? e.fraction_of_stream : null;
                 }),
                 entries: seqs.map(function (s) { return mine.filter(function (b) { return b.kernel === k && b.num_seqs === s; })[0]; }) };
      });
      chart(grid, "chart-bench-" + gi, {
        type: "line",
        data: { labels: seqs.map(String), datasets: datasets },
        options: { plugins: { title: { display: true, text: g },
                              tooltip: { callbacks: { afterLabel: function (item) {
                                var e = item.dataset.entries[item.dataIndex];
                                return e ? fmt(e.median_ms) + " ms ± " + fmt(e.spread_ms) + ", " + fmt(e.bandwidth_gbs, 4) + " GB/s" + (e.kernel === e.chosen ? " (chosen)" : "") : "";
                              } } } },
                   scales: { y: { min: 0, suggestedMax: 1, title: { display: true, text: "fraction of stream bandwidth" } },
                             x: { title: { display: true, text: "num_seqs (concurrency)" } } } }
      });
    });
    body.appendChild(el("h3", { text: "Dispatcher regret: chosen kernel's time over the fastest's, − 1" }));
    body.appendChild(el("div", { cls: "note", text: "Each cell: the regret, then chosen → fastest (✓ when the dispatcher chose the fastest). Green 0, red ≥ 50%." }));
    var rs = regrets(bench);
    uniq(rs.map(function (r) { return r.model + " · " + r.kv_dtype; })).sort(natural).forEach(function (g, gi) {
      var mine = rs.filter(function (r) { return r.model + " · " + r.kv_dtype === g; });
      var seqs = uniq(mine.map(function (r) { return r.num_seqs; })).sort(function (a, b) { return a - b; });
      var ctxs = uniq(mine.map(function (r) { return r.context; })).sort(function (a, b) { return a - b; });
      var cells = 0;
      var head = el("tr", {}, [el("th", { text: "context \\ num_seqs" })].concat(seqs.map(function (s) { return el("th", { text: String(s) }); })));
      var rows = ctxs.map(function (cx) {
        return el("tr", {}, [el("td", { cls: "k", text: String(cx) })].concat(seqs.map(function (s) {
          var r = mine.filter(function (x) { return x.num_seqs === s && x.context === cx; })[0];
          if (!r) return el("td", { text: "–" });
          if (r.regret !== null) cells++;
          var label = r.regret === null ? "n/a" : "+" + (100 * r.regret).toFixed(r.regret < 0.1 ? 1 : 0) + "%";
          var who = !r.chosen ? "refused" : r.chosen === r.fastest ? r.chosen + " ✓" : r.chosen + " → " + r.fastest;
          return el("td", { style: "background:" + heatColor(r.regret), title: "chosen " + (r.chosen || "none") + ", fastest " + r.fastest },
                    [el("div", { text: label }), el("div", { cls: "c-ns", text: who })]);
        })));
      });
      var id = "heat-" + gi;
      tables.push({ id: id, cells: cells });
      body.appendChild(el("h3", { text: g }));
      body.appendChild(el("table", { cls: "heat", id: id }, [el("thead", {}, [head]), el("tbody", {}, rows)]));
    });
  }

  // ---- trend ------------------------------------------------------------------------------------
  function drawTrend(body) {
    var h = DATA.history;
    if (h.length < 2) return;
    document.getElementById("trend").hidden = false;
    var labels = h.map(function (r) { return [basename(r.name), String(r.started_utc).replace("T", " ").replace("Z", "")]; });
    var kernels = [];
    h.forEach(function (r) { kernels = uniq(kernels.concat(r.kernels.map(function (k) { return k.kernel; }))); });
    function countsOf(r, k) { return r.kernels.filter(function (x) { return x.kernel === k; }).map(function (x) { return x.counts; })[0]; }
    var grid = el("div", { cls: "charts" });
    body.appendChild(grid);
    body.appendChild(el("h3", { text: "Reports, oldest first" }));
    chart(grid, "chart-trend-pass", {
      type: "line",
      data: { labels: labels, datasets: kernels.map(function (k) {
        return { label: k, borderColor: color(k), backgroundColor: color(k), spanGaps: true, data: h.map(function (r) {
          var c = countsOf(r, k);
          return c && c.Ok + c.Fail > 0 ? 100 * c.Ok / (c.Ok + c.Fail) : null;
        }) };
      }) },
      options: { plugins: { title: { display: true, text: "pass rate per kernel: Ok / (Ok + Fail)" } },
                 scales: { y: { suggestedMin: 90, max: 100, title: { display: true, text: "%" } } } }
    });
    chart(grid, "chart-trend-fail", {
      type: "bar",
      data: { labels: labels, datasets: kernels.map(function (k) {
        return { label: k, backgroundColor: color(k), data: h.map(function (r) { var c = countsOf(r, k); return c ? c.Fail : null; }) };
      }) },
      options: { plugins: { title: { display: true, text: "failing records per kernel" } },
                 scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
    var head = el("tr", {}, ["report", "started", "commit", "suite", "Ok", "Fail", "NotSupported", "Skipped", "state"].map(function (x) { return el("th", { text: x }); }));
    body.appendChild(el("table", { cls: "stats" }, [el("thead", {}, [head]), el("tbody", {}, h.map(function (r) {
      return el("tr", {}, [el("td", { cls: "k", text: basename(r.name), title: r.name }), el("td", { text: r.started_utc }), el("td", { cls: "mono", text: r.git_commit }),
        el("td", { text: r.suite })].concat(STATUSES.map(function (st) { return el("td", { text: String(r.counts[st]) }); }))
        .concat([el("td", { text: r.interrupted ? "interrupted" : r.complete ? "complete" : "partial" })]));
    }))]));
  }

  // ---- self-check -------------------------------------------------------------------------------
  function inked(canvas) {
    if (!canvas.width || !canvas.height) return false;
    var px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (var i = 3; i < px.length; i += 4) if (px[i] !== 0) return true;
    return false;
  }
  function selfCheck() {
    var instances = typeof Chart === "undefined" ? [] : Object.keys(Chart.instances).map(function (k) { return Chart.instances[k]; });
    var empty = [];
    instances.forEach(function (ch) {
      var points = 0;
      ch.data.datasets.forEach(function (ds) {
        ds.data.forEach(function (v) { if (v !== null && v !== undefined && !(typeof v === "object" && (v.y === null || v.y === undefined))) points++; });
      });
      if (!points) empty.push(ch.canvas.id + ": no data points");
      else if (!inked(ch.canvas)) empty.push(ch.canvas.id + ": nothing drawn");
    });
    tables.forEach(function (t) { if (!t.cells) empty.push(t.id + ": no cells with a value"); });
    // Every ✗ link of the matrix must land on a failure and its filter must show as many failures
    // as the cell counts (the matrix counts records, the filter reads the failure list).
    var links = document.querySelectorAll("a.c-fail");
    Array.prototype.forEach.call(links, function (a) {
      var filter = JSON.parse(a.getAttribute("data-filter"));
      var shown = LATEST.failures.filter(function (f) { return matches(f, filter); }).length;
      if (!document.getElementById(a.getAttribute("href").slice(1)))
        window.pacheckErrors.push("matrix link " + a.getAttribute("href") + " has no target");
      if (String(shown) !== a.getAttribute("data-count"))
        window.pacheckErrors.push("matrix cell " + a.getAttribute("data-filter") + " counts " + a.getAttribute("data-count") + " failures, its filter shows " + shown);
    });
    var out = { ready: true, chart_js: typeof Chart === "undefined" ? null : Chart.version,
                charts: instances.length, tables: tables.length, links: links.length, empty: empty, errors: window.pacheckErrors.slice(),
                failures: LATEST.failures.length, records: LATEST.records.length,
                height: Math.ceil(document.documentElement.scrollHeight) };
    document.getElementById("pacheck-check").textContent = JSON.stringify(out);
  }

  if (typeof Chart === "undefined") window.pacheckErrors.push("Chart.js is not loaded (the inlined script did not define Chart)");
  else Chart.defaults.font.size = 12.5;
  guarded("summary", "summary-body", drawSummary);
  guarded("matrix", "matrix-body", drawMatrix);
  guarded("failures", "failures-body", drawFailures);
  guarded("edge", "edge-body", drawEdge);
  guarded("bench", "bench-body", drawBench);
  guarded("trend", "trend-body", drawTrend);
  if (!LATEST.bench || !LATEST.bench.length) document.getElementById("nav-bench").style.display = "none";
  if (DATA.history.length < 2) document.getElementById("nav-trend").style.display = "none";
  // A hash naming a failure (a link shared from an earlier look) scrolls there once drawn.
  if (/^#fail-\d+$/.test(location.hash)) { var t = document.getElementById(location.hash.slice(1)); if (t) t.scrollIntoView(); }
  setTimeout(selfCheck, 0);
})();
