/* The masking explorer: chapter 2's widget, in the browser, with no Python behind the page.
 *
 * The rules are those of mlm_lessons.masking (see mlm_lessons/teaching/explorer.py):
 *  - eligible positions are those not holding a special id ([PAD], [UNK], [CLS], [SEP], [MASK]);
 *  - "exact" selects max(1, round(ratio * n)) of a sequence's n eligible units (Python's round:
 *    halves to even), "bernoulli" each unit with probability ratio; units are pieces, or words
 *    with "whole words" on (all pieces of a chosen word are selected together);
 *  - a selected piece becomes [MASK] (share p_mask), a random non-special token (p_random) or
 *    stays (p_keep); the three shares are linked so that they always sum to 100%;
 *  - the expected counts are those of mlm_lessons.masking.expected_counts.
 * Random numbers come from a seeded generator (mulberry32), drawn in the package's order: a score
 * per unit, a fate draw per position, a random index per position. A seed gives one view, always.
 * window.mlmExplorer exposes the pure functions (the book's browser tests compare them with the
 * package's Python).
 */
(function () {
  "use strict";

  var FATES = ["untouched", "[MASK]", "random", "kept"];
  var SHARES = ["mask", "random", "keep"];
  var SHARE_LABELS = { mask: "[MASK]", random: "random token", keep: "unchanged" };

  function roundHalfEven(x) {
    var r = Math.round(x);
    return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
  }

  function numToSelect(n, ratio) {
    return n === 0 ? 0 : Math.max(1, roundHalfEven(ratio * n));
  }

  function rebalance(shares, changed, value) {
    if (SHARES.indexOf(changed) < 0) throw new Error("changed must be one of " + SHARES + ", got " + changed);
    if (!Number.isInteger(value) || value < 0 || value > 100) throw new Error("a percentage must be an int in [0, 100], got " + value);
    var others = SHARES.filter(function (k) { return k !== changed; });
    var a = others[0], b = others[1];
    var rest = 100 - value;
    var total = shares[a] + shares[b];
    var newA = total === 0 ? Math.floor(rest / 2) : roundHalfEven(rest * shares[a] / total);
    var out = {};
    out[changed] = value;
    out[a] = newA;
    out[b] = rest - newA;
    return out;
  }

  function mulberry32(seed) {
    var t = seed >>> 0;
    return function () {
      t = (t + 0x6d2b79f5) >>> 0;
      var r = Math.imul(t ^ (t >>> 15), 1 | t);
      r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
      return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
    };
  }

  /* Units of each row: per position its unit index (-1: not eligible), and the units' count. */
  function units(data, wholeWord) {
    var special = {};
    data.special_ids.forEach(function (s) { special[s] = true; });
    return data.input_ids.map(function (row, b) {
      var index = [], seen = {}, n = 0, pieces = 0;
      row.forEach(function (id, i) {
        if (special[id]) { index.push(-1); return; }
        pieces += 1;
        var u = wholeWord ? data.word_ids[b][i] : i;
        index.push(u);
        if (u >= 0 && !seen[u]) { seen[u] = true; n += 1; }
      });
      return { index: index, n: n, pieces: pieces, seen: seen };
    });
  }

  function checkConfig(cfg) {
    if (!(cfg.mask_ratio > 0 && cfg.mask_ratio <= 1)) throw new Error("mask_ratio must be in (0, 1], got " + cfg.mask_ratio);
    if (cfg.selection !== "exact" && cfg.selection !== "bernoulli") throw new Error("selection must be exact or bernoulli, got " + cfg.selection);
    var total = cfg.p_mask + cfg.p_random + cfg.p_keep;
    if (Math.abs(total - 1) > 1e-6) throw new Error("p_mask + p_random + p_keep must equal 1, got " + total);
  }

  function expectedCounts(data, cfg) {
    checkConfig(cfg);
    var selected = 0;
    units(data, cfg.whole_word).forEach(function (u) {
      if (u.n === 0) return;
      var share = cfg.selection === "exact" ? numToSelect(u.n, cfg.mask_ratio) / u.n : cfg.mask_ratio;
      selected += share * u.pieces;
    });
    var total = data.input_ids.length * (data.input_ids.length ? data.input_ids[0].length : 0);
    return { untouched: total - selected, "[MASK]": selected * cfg.p_mask, random: selected * cfg.p_random, kept: selected * cfg.p_keep };
  }

  /* Mask the whole batch; returns per row the fates (0..3, as mlm_lessons.masking.Fate) and inputs. */
  function maskBatch(data, cfg, seed) {
    checkConfig(cfg);
    var rand = mulberry32(seed);
    var rows = units(data, cfg.whole_word);
    // as many scores per row as the package draws: one per position, or one per word index
    var width = cfg.whole_word ? 0 : (data.input_ids.length ? data.input_ids[0].length : 0);
    if (cfg.whole_word) rows.forEach(function (u) {
      u.index.forEach(function (x) { if (x + 1 > width) width = x + 1; });
    });
    // 1. one score per unit (a position, or a word), row by row
    var chosen = rows.map(function (u) {
      var scores = [];
      for (var j = 0; j < width; j++) scores.push(rand());
      var eligible = [];
      for (var k = 0; k < width; k++) if (u.seen[k]) eligible.push(k);
      var pick = {};
      if (cfg.selection === "bernoulli") {
        eligible.forEach(function (k) { if (scores[k] < cfg.mask_ratio) pick[k] = true; });
      } else {
        eligible.sort(function (x, y) { return scores[x] - scores[y]; });
        eligible.slice(0, numToSelect(u.n, cfg.mask_ratio)).forEach(function (k) { pick[k] = true; });
      }
      return pick;
    });
    var pool = [];
    var special = {};
    data.special_ids.forEach(function (s) { special[s] = true; });
    for (var id = 0; id < data.vocab.length; id++) if (!special[id]) pool.push(id);
    // 2. a fate draw per position, 3. a random index per position
    var fateDraw = data.input_ids.map(function (row) { return row.map(function () { return rand(); }); });
    var randomIndex = data.input_ids.map(function (row) {
      return row.map(function () { return Math.floor(rand() * pool.length); });
    });
    return data.input_ids.map(function (row, b) {
      var fate = [], inputs = [];
      row.forEach(function (orig, i) {
        var u = rows[b].index[i];
        var f = 0;
        if (u >= 0 && chosen[b][u]) {
          var d = fateDraw[b][i];
          f = d < cfg.p_mask ? 1 : d < cfg.p_mask + cfg.p_random ? 2 : 3;
        }
        fate.push(f);
        inputs.push(f === 1 ? data.mask_id : f === 2 ? pool[randomIndex[b][i]] : orig);
      });
      return { fate: fate, inputs: inputs };
    });
  }

  function counts(masked) {
    var c = { untouched: 0, "[MASK]": 0, random: 0, kept: 0 };
    masked.forEach(function (row) { row.fate.forEach(function (f) { c[FATES[f]] += 1; }); });
    return c;
  }

  /* ---- the view ---- */

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }

  function slider(id, label, min, max, value, suffix) {
    var input = el("input", { type: "range", id: id, min: min, max: max, step: 1, value: value, "aria-valuetext": value + suffix });
    var out = el("output", { "for": id, text: value + suffix });
    return { row: el("div", { "class": "mlmx-slider" }, [el("label", { "for": id, text: label }), input, out]), input: input, out: out };
  }

  function build(root) {
    var data = JSON.parse(root.querySelector("script.mlm-explorer-data").textContent);
    var id = root.id;
    var state = { ratio: 15, shares: { mask: 80, random: 10, keep: 10 }, selection: "exact", wholeWord: false, seed: data.seed };

    var ratio = slider(id + "-ratio", "Mask ratio", 1, 100, state.ratio, "%");
    var shareSliders = {};
    var fieldset = el("fieldset", { "class": "mlmx-shares" }, [
      el("legend", { text: "What a selected piece becomes (the three always sum to 100%)" })
    ]);
    SHARES.forEach(function (k) {
      shareSliders[k] = slider(id + "-" + k, SHARE_LABELS[k], 0, 100, state.shares[k], "%");
      shareSliders[k].input.setAttribute("data-share", k);
      fieldset.appendChild(shareSliders[k].row);
    });
    var RULES = {
      exact: "exact: max(1, round(ratio × n)) of a sentence's n eligible pieces",
      bernoulli: "bernoulli: each eligible piece with probability ratio"
    };
    var selection = el("select", { id: id + "-selection", "aria-describedby": id + "-rule" }, [
      el("option", { value: "exact", text: "exact" }),
      el("option", { value: "bernoulli", text: "bernoulli" })
    ]);
    var rule = el("p", { id: id + "-rule", "class": "mlmx-rule", text: RULES.exact });
    var wholeWord = el("input", { type: "checkbox", id: id + "-whole-word" });
    var seed = el("input", { type: "number", id: id + "-seed", min: 0, step: 1, value: state.seed, inputmode: "numeric" });
    var resample = el("button", { type: "button", "class": "mlmx-resample", text: "Resample (seed + 1)" });
    var seedError = el("p", { "class": "mlmx-error", role: "alert", id: id + "-seed-error" });
    seed.setAttribute("aria-describedby", seedError.id);
    var controls = el("form", { "class": "mlmx-controls", "aria-label": "Masking explorer controls" }, [
      ratio.row,
      fieldset,
      el("div", { "class": "mlmx-row" }, [el("label", { "for": selection.id, text: "Selection" }), selection]),
      rule,
      el("div", { "class": "mlmx-row mlmx-check" }, [wholeWord, el("label", { "for": wholeWord.id, text: "Whole words (all pieces of a chosen word)" })]),
      el("div", { "class": "mlmx-row" }, [el("label", { "for": seed.id, text: "Seed" }), seed, resample]),
      seedError
    ]);
    controls.addEventListener("submit", function (e) { e.preventDefault(); });

    var summary = el("p", { "class": "mlmx-summary", "aria-live": "polite" });
    var sequence = el("ol", { "class": "mlmx-sequence", "aria-label": "The sentence after masking, piece by piece" });
    var legend = el("p", { "class": "mlmx-legend", "aria-hidden": "true" });
    FATES.forEach(function (f) {
      legend.appendChild(el("span", { "class": "mlmx-swatch", style: "background:" + data.colors[f], text: f }));
    });
    legend.appendChild(el("span", { "class": "mlmx-swatch mlmx-special", text: "special (never selected)" }));
    var table = el("table", { "class": "mlmx-counts" });
    var wrap = el("div", { "class": "mlmx-layout" }, [
      controls,
      el("div", { "class": "mlmx-view" }, [summary, sequence, legend, table])
    ]);
    root.querySelectorAll(".mlmx-noscript").forEach(function (n) { n.remove(); });
    root.appendChild(wrap);

    function config() {
      return {
        mask_ratio: state.ratio / 100, p_mask: state.shares.mask / 100, p_random: state.shares.random / 100,
        p_keep: state.shares.keep / 100, selection: state.selection, whole_word: state.wholeWord
      };
    }

    function render() {
      var cfg = config();
      var masked = maskBatch(data, cfg, state.seed);
      var first = masked[0];
      var special = {};
      data.special_ids.forEach(function (s) { special[s] = true; });
      sequence.textContent = "";
      var eligible = 0, selected = 0;
      data.input_ids[0].forEach(function (orig, i) {
        if (orig === data.pad_id) return;
        var f = first.fate[i];
        var isSpecial = !!special[orig];
        if (!isSpecial) eligible += 1;
        if (f !== 0) selected += 1;
        var shown = data.vocab[first.inputs[i]], was = data.vocab[orig];
        var item = el("li", {
          "class": "mlmx-piece" + (isSpecial ? " mlmx-special" : ""), "data-fate": FATES[f], "data-special": String(isSpecial),
          "data-original": was, style: isSpecial ? "" : "background:" + data.colors[FATES[f]]
        });
        var label = isSpecial ? was + " (special)" : f === 0 ? was : f === 1 ? "[MASK], was " + was : f === 2 ? shown + ", a random token replacing " + was : was + ", selected and kept";
        item.setAttribute("aria-label", label);
        item.setAttribute("title", label);
        item.appendChild(el("span", { "class": "mlmx-shown", text: shown }));
        if (f === 1 || f === 2) item.appendChild(el("span", { "class": "mlmx-was", text: was }));
        sequence.appendChild(item);
      });
      root.setAttribute("data-selected", String(selected));
      root.setAttribute("data-eligible", String(eligible));
      summary.textContent = selected + " of " + eligible + " pieces selected (mask ratio " + state.ratio + "%, " +
        state.selection + (state.wholeWord ? ", whole words" : "") + ", seed " + state.seed + ").";

      var observed = counts(masked), expected = expectedCounts(data, cfg);
      table.textContent = "";
      table.appendChild(el("caption", { text: "Fates of all positions in " + data.input_ids.length + " sentences (padded to " + data.input_ids[0].length + "), against their expectation" }));
      table.appendChild(el("thead", {}, [el("tr", {}, [
        el("th", { scope: "col", text: "fate" }), el("th", { scope: "col", text: "observed" }),
        el("th", { scope: "col", text: "expected" }), el("th", { scope: "col", "class": "mlmx-bars-head", text: "bars" })
      ])]));
      var body = el("tbody");
      FATES.forEach(function (f) {
        var top = Math.max(observed[f], expected[f], 1e-9);
        var bars = el("td", { "class": "mlmx-bars", "aria-hidden": "true" }, [
          el("span", { "class": "mlmx-bar", style: "width:" + (100 * observed[f] / top).toFixed(1) + "%;background:" + data.colors[f] }),
          el("span", { "class": "mlmx-bar mlmx-expected", style: "width:" + (100 * expected[f] / top).toFixed(1) + "%" })
        ]);
        body.appendChild(el("tr", { "data-fate": f }, [
          el("th", { scope: "row", text: f }), el("td", { "class": "mlmx-observed", text: String(observed[f]) }),
          el("td", { "class": "mlmx-expected-count", "data-value": String(expected[f]), text: expected[f].toFixed(1) }), bars
        ]));
      });
      table.appendChild(body);
    }

    function setOutput(s, value) {
      s.input.value = value;
      s.out.textContent = value + "%";
      s.input.setAttribute("aria-valuetext", value + "%");
    }

    ratio.input.addEventListener("input", function () {
      state.ratio = parseInt(ratio.input.value, 10);
      setOutput(ratio, state.ratio);
      render();
    });
    SHARES.forEach(function (k) {
      shareSliders[k].input.addEventListener("input", function () {
        state.shares = rebalance(state.shares, k, parseInt(shareSliders[k].input.value, 10));
        SHARES.forEach(function (j) { setOutput(shareSliders[j], state.shares[j]); });
        render();
      });
    });
    selection.addEventListener("change", function () {
      state.selection = selection.value;
      rule.textContent = RULES[state.selection];
      render();
    });
    wholeWord.addEventListener("change", function () { state.wholeWord = wholeWord.checked; render(); });
    seed.addEventListener("change", function () {
      var v = Number(seed.value);
      if (seed.value.trim() === "" || !Number.isInteger(v) || v < 0 || v > 4294967295) {
        seedError.textContent = "The seed must be a whole number from 0 to 4294967295, not " +
          JSON.stringify(seed.value) + "; the view keeps seed " + state.seed + ".";
        seed.setAttribute("aria-invalid", "true");
        return;
      }
      seedError.textContent = "";
      seed.removeAttribute("aria-invalid");
      state.seed = v;
      render();
    });
    resample.addEventListener("click", function () {
      state.seed = (state.seed + 1) % 4294967296;
      seed.value = state.seed;
      seedError.textContent = "";
      seed.removeAttribute("aria-invalid");
      render();
    });
    render();
    root.mlmExplorer = { data: data, state: state, render: render };
  }

  function init() {
    document.querySelectorAll(".mlm-explorer").forEach(function (root) {
      if (!root.mlmExplorer) build(root);
    });
  }

  window.mlmExplorer = {
    roundHalfEven: roundHalfEven, numToSelect: numToSelect, rebalance: rebalance, mulberry32: mulberry32,
    expectedCounts: expectedCounts, maskBatch: maskBatch, counts: counts, init: init
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
