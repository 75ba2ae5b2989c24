/* The live fill-mask box of the online book: chapter 5's model answers in the reader's browser.
 *
 * Nothing runs until the reader asks: the first answer loads onnxruntime-web (its WebAssembly build,
 * served by the book from _static/third_party/onnxruntime-web), the model (an ONNX file written by
 * mlm_lessons.web.export_onnx) and its tokenizer (tokenizer.json of the `tokenizers` library), all
 * from _static/live-fill-mask. The tokenizer below cuts text as mlm_lessons.MLMTokenizer does:
 * special tokens matched in the raw text, BERT's normaliser (clean text, CJK characters set apart,
 * accents stripped, lower case), BERT's pre-tokenizer (whitespace, punctuation alone) and greedy
 * longest-match WordPiece. fillMask follows mlm_lessons.model.fill_mask: specials get probability 0;
 * several masks are filled all at once (one pass) or one at a time, the surest first.
 */
(function () {
  "use strict";

  const script = document.currentScript;
  const STATIC = new URL(".", script ? script.src : document.baseURI);
  const PATHS = {
    bundle: new URL("live-fill-mask/", STATIC).href,
    ort: new URL("third_party/onnxruntime-web/", STATIC).href,
  };
  const ORT_MODULE = "ort.wasm.bundle.min.mjs";
  const MASK = "[MASK]";

  // ------------------------------------------------------------------ the tokenizer

  const RE = { punct: /\p{P}/u, space: /\p{White_Space}/u, other: /\p{C}/u, mark: /\p{Mn}/u };
  const isAsciiPunct = (c) => /^[!-/:-@[-`{-~]$/.test(c);
  const isWhitespace = (c) => c === "\t" || c === "\n" || c === "\r" || RE.space.test(c);
  const isControl = (c) => !(c === "\t" || c === "\n" || c === "\r") && RE.other.test(c);
  const isPunct = (c) => isAsciiPunct(c) || RE.punct.test(c);
  const CJK = [[0x4e00, 0x9fff], [0x3400, 0x4dbf], [0x20000, 0x2a6df], [0x2a700, 0x2b73f], [0x2b740, 0x2b81f],
               [0x2b920, 0x2ceaf], [0xf900, 0xfaff], [0x2f800, 0x2fa1f]];
  const isChinese = (cp) => CJK.some(([a, b]) => cp >= a && cp <= b);

  class Tokenizer {
    /** spec: the parsed tokenizer.json of a BERT-style WordPiece tokenizer. */
    constructor(spec) {
      const kinds = [spec.normalizer && spec.normalizer.type, spec.pre_tokenizer && spec.pre_tokenizer.type, spec.model && spec.model.type];
      if (kinds.join() !== "BertNormalizer,BertPreTokenizer,WordPiece") {
        throw new Error("this page reads BERT-style WordPiece tokenizers only, not " + kinds.join(" + "));
      }
      const n = spec.normalizer, m = spec.model;
      this.clean = n.clean_text; this.chinese = n.handle_chinese_chars; this.lowercase = n.lowercase;
      this.strip = n.strip_accents === null || n.strip_accents === undefined ? n.lowercase : n.strip_accents;
      this.vocab = new Map(Object.entries(m.vocab));
      this.pieces = [];
      for (const [piece, id] of this.vocab) this.pieces[id] = piece;
      for (const t of spec.added_tokens) { this.vocab.set(t.content, t.id); this.pieces[t.id] = t.content; }
      // matched in the raw text, longest first where two start at the same place
      this.specials = spec.added_tokens.filter((t) => t.special && !t.normalized).sort((a, b) => b.content.length - a.content.length);
      this.prefix = m.continuing_subword_prefix; this.maxChars = m.max_input_chars_per_word;
      this.unk = m.unk_token; this.unkId = this.vocab.get(m.unk_token);
      this.cls = this.vocab.get("[CLS]"); this.sep = this.vocab.get("[SEP]");
    }

    normalize(text) {
      const out = [];
      for (const c of text) {
        const cp = c.codePointAt(0);
        if (this.clean) {
          if (cp === 0 || cp === 0xfffd || isControl(c)) continue;
          if (isWhitespace(c)) { out.push(" "); continue; }
        }
        if (this.chinese && isChinese(cp)) { out.push(" ", c, " "); continue; }
        out.push(c);
      }
      let s = out.join("");
      if (this.strip) s = Array.from(s.normalize("NFD")).filter((c) => !RE.mark.test(c)).join("");
      if (this.lowercase) s = Array.from(s, (c) => c.toLowerCase()).join("");
      return s;
    }

    preTokenize(text) {
      const words = [];
      let word = [];
      const flush = () => { if (word.length) { words.push(word.join("")); word = []; } };
      for (const c of text) {
        if (RE.space.test(c)) flush();
        else if (isPunct(c)) { flush(); words.push(c); }
        else word.push(c);
      }
      flush();
      return words;
    }

    wordPiece(word) {
      const chars = Array.from(word);
      if (chars.length > this.maxChars) return [this.unk];
      const pieces = [];
      for (let start = 0; start < chars.length;) {
        let end = chars.length, found = null;
        while (start < end) {
          const piece = (start > 0 ? this.prefix : "") + chars.slice(start, end).join("");
          if (this.vocab.has(piece)) { found = piece; break; }
          end -= 1;
        }
        if (found === null) return [this.unk];
        pieces.push(found);
        start = end;
      }
      return pieces;
    }

    /** [{piece, id, word}] of the text, without [CLS]/[SEP]; word is the word a piece came from (null for a special). */
    tokenize(text) {
      const out = [];
      const addText = (segment) => {
        for (const word of this.preTokenize(this.normalize(segment))) {
          for (const piece of this.wordPiece(word)) out.push({ piece, id: this.vocab.get(piece), word });
        }
      };
      let from = 0;
      for (let i = 0; i < text.length;) {
        const hit = this.specials.find((t) => text.startsWith(t.content, i));
        if (!hit) { i += 1; continue; }
        addText(text.slice(from, i));
        out.push({ piece: hit.content, id: hit.id, word: null });
        i += hit.content.length;
        from = i;
      }
      addText(text.slice(from));
      return out;
    }

    pieceList(text) { return this.tokenize(text).map((t) => t.piece); }

    /** ids with [CLS] and [SEP], as MLMTokenizer.encode(text). */
    encode(text) { return [this.cls, ...this.tokenize(text).map((t) => t.id), this.sep]; }

    /** The characters of a word that no piece of the vocabulary holds (alone or after "##"). */
    unknownCharacters(word) {
      return Array.from(new Set(Array.from(word).filter((c) => !this.vocab.has(c) && !this.vocab.has(this.prefix + c))));
    }
  }

  // ------------------------------------------------------------------ the model

  let loading = null;

  /** onnxruntime-web, the tokenizer, the metadata and an inference session; loaded once, on first use. */
  function load() {
    if (!loading) {
      loading = (async () => {
        const started = performance.now();
        const [ort, meta, spec, model] = await Promise.all([
          import(PATHS.ort + ORT_MODULE),
          fetchOk(PATHS.bundle + "meta.json").then((r) => r.json()),
          fetchOk(PATHS.bundle + "tokenizer.json").then((r) => r.json()),
          fetchOk(PATHS.bundle + "model.onnx").then((r) => r.arrayBuffer()),
        ]);
        ort.env.wasm.numThreads = 1; // a static page is not cross-origin isolated: no threads
        ort.env.wasm.proxy = false;
        ort.env.wasm.wasmPaths = { wasm: PATHS.ort + "ort-wasm-simd-threaded.wasm" }; // the loader is in the module
        ort.env.logLevel = "error";
        const session = await ort.InferenceSession.create(new Uint8Array(model), { executionProviders: ["wasm"] });
        return { ort, meta, session, tokenizer: new Tokenizer(spec), loadMs: performance.now() - started };
      })();
      loading.catch(() => { loading = null; }); // a failed load can be tried again
    }
    return loading;
  }

  async function fetchOk(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url.split("/").pop()} could not be fetched (HTTP ${response.status})`);
    return response;
  }

  async function forward(m, ids) {
    const T = ids.length;
    const feeds = {
      input_ids: new m.ort.Tensor("int64", BigInt64Array.from(ids, (i) => BigInt(i)), [1, T]),
      attention_mask: new m.ort.Tensor("int64", new BigInt64Array(T).fill(1n), [1, T]),
    };
    const out = await m.session.run(feeds);
    return { logits: out.logits.data, attention: out.attention.data, T };
  }

  /** The top k pieces at one position: softmax (float64), specials at 0, as fill_mask. */
  function topAt(m, logits, pos, k) {
    const V = m.meta.vocab_size, row = logits.subarray(pos * V, (pos + 1) * V);
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (row[i] > max) max = row[i];
    const probs = new Float64Array(V);
    let total = 0;
    for (let i = 0; i < V; i++) { probs[i] = Math.exp(row[i] - max); total += probs[i]; }
    for (let i = 0; i < V; i++) probs[i] /= total;
    for (const s of m.meta.special_ids) probs[s] = 0;
    let kept = 0;
    for (let i = 0; i < V; i++) kept += probs[i];
    const top = [];
    for (let i = 0; i < V; i++) {
      if (top.length < k || probs[i] > top[top.length - 1].prob) {
        top.push({ id: i, token: m.tokenizer.pieces[i], prob: probs[i] });
        top.sort((a, b) => b.prob - a.prob || a.id - b.id);
        if (top.length > k) top.pop();
      }
    }
    return { top, sure: top[0].prob / kept };
  }

  class InputError extends Error {}

  /** Refuse what fill_mask would refuse (no [MASK], too long) and what the model cannot read (specials
   * other than [MASK], characters outside the vocabulary), in words a reader can act on. */
  function check(m, text) {
    const tok = m.tokenizer;
    if (!text.includes(MASK)) {
      throw new InputError(/\[mask\]/i.test(text)
        ? "Write [MASK] in capital letters: the tokenizer reads only that spelling as the mask token."
        : "Write [MASK] where the model should guess a piece, e.g. “Return a new [MASK] with the same size.”");
    }
    const pieces = tok.tokenize(text);
    const other = pieces.find((p) => p.word === null && p.piece !== MASK);
    if (other) throw new InputError(`${other.piece} is one of the model's special tokens; only [MASK] may be written in the sentence.`);
    const unknown = pieces.find((p) => p.id === tok.unkId && p.word !== null);
    if (unknown) {
      const chars = tok.unknownCharacters(unknown.word);
      if (chars.length) {
        const named = chars.map((c) => `“${c}” (U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")})`).join(", ");
        throw new InputError(`The model's vocabulary has no piece for ${named}, so it would read “${unknown.word}” as [UNK]. Remove or replace ${chars.length > 1 ? "those characters" : "that character"}.`);
      }
      throw new InputError(`The word “${unknown.word.slice(0, 24)}…” is longer than ${tok.maxChars} characters; the tokenizer reads such a word as [UNK]. Shorten it.`);
    }
    const length = pieces.length + 2;
    if (length > m.meta.max_len) {
      throw new InputError(`The sentence is ${length} pieces long with [CLS] and [SEP]; the model reads at most ${m.meta.max_len}. Shorten it.`);
    }
  }

  /** fill_mask in the browser: {pieces, masks: [{position, filledAs (1-based order, one at a time), top: [{token, prob}]}],
   * filled: the pieces with each mask's first choice, attention of the first pass, ms}. */
  async function fillMask(text, { oneAtATime = false, topK = 5 } = {}) {
    const m = await load();
    check(m, text);
    const started = performance.now();
    const ids = m.tokenizer.encode(text);
    const positions = ids.flatMap((id, i) => (id === m.meta.mask_id ? [i] : []));
    const answers = new Map();
    let first = null;
    while (answers.size < positions.length) {
      const run = await forward(m, ids);
      if (!first) first = run;
      const open = positions.filter((p) => !answers.has(p)).map((p) => [p, topAt(m, run.logits, p, topK)]);
      if (!oneAtATime) { open.forEach(([p, t]) => answers.set(p, { ...t, order: null })); break; }
      let [best, bestTop] = open[0];
      for (const [p, t] of open) if (t.sure > bestTop.sure) { best = p; bestTop = t; } // the leftmost on a tie
      answers.set(best, { ...bestTop, order: answers.size + 1 });
      ids[best] = bestTop.top[0].id;
    }
    const filled = ids.map((id, i) => (answers.has(i) ? answers.get(i).top[0].token : m.tokenizer.pieces[id]));
    return {
      pieces: m.tokenizer.encode(text).map((id) => m.tokenizer.pieces[id]),
      masks: positions.map((p) => ({ position: p, filledAs: answers.get(p).order, top: answers.get(p).top.map(({ token, prob }) => ({ token, prob })) })),
      filled, attention: first.attention, T: first.T, layers: m.meta.layers, heads: m.meta.heads,
      ms: performance.now() - started,
    };
  }

  // ------------------------------------------------------------------ the page

  const ordinal = (n) => n + (n % 10 === 1 && n % 100 !== 11 ? "st" : n % 10 === 2 && n % 100 !== 12 ? "nd" : n % 10 === 3 && n % 100 !== 13 ? "rd" : "th");
  const detokenize = (pieces) => pieces.filter((p, i) => !(i === 0 && p === "[CLS]") && !(i === pieces.length - 1 && p === "[SEP]"))
    .join(" ").replace(/ ##/g, "");

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") e.textContent = v; else if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const c of children) if (c) e.append(c);
    return e;
  }

  function setup(root) {
    const form = root.querySelector("form"), input = root.querySelector("input[type=text]");
    const button = root.querySelector("button"), status = root.querySelector(".mlml-status");
    const error = root.querySelector(".mlml-error"), answers = root.querySelector(".mlml-answers");
    const attention = root.querySelector(".mlml-attention"), layerPick = root.querySelector(".mlml-layer");
    const headPick = root.querySelector(".mlml-head"), canvas = root.querySelector("canvas");
    const api = { fillMask, tokenizer: null, last: null, firstAnswerMs: null, loadMs: null };
    root.mlmLive = api;

    function showAttention() {
      const r = api.last;
      if (!r) return;
      const layer = +layerPick.value, head = +headPick.value, T = r.T;
      const base = (layer * r.heads + head) * T * T;
      const weights = Array.from({ length: T }, (_, q) => Array.from(r.attention.subarray(base + q * T, base + (q + 1) * T)));
      api.attentionShown = { layer, head, weights };
      const labels = r.pieces, ctx = canvas.getContext("2d");
      const width = Math.max(200, Math.min(attention.clientWidth || 600, 720));
      const label = Math.min(90, width * 0.22), cell = Math.max(3, Math.min(28, Math.floor((width - label) / T)));
      canvas.width = label + cell * T; canvas.height = label + cell * T;
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.font = `${Math.min(11, cell)}px monospace`; ctx.fillStyle = "#111"; ctx.textBaseline = "middle";
      labels.forEach((p, i) => {
        ctx.textAlign = "right"; // rows: the pieces that look, left of the grid
        ctx.fillText(p, label - 3, label + cell * (i + 0.5), label - 4);
        ctx.save(); ctx.translate(label + cell * (i + 0.5), label - 3); ctx.rotate(-Math.PI / 2);
        ctx.textAlign = "left"; // columns: the pieces looked at, written upwards above the grid
        ctx.fillText(p, 0, 0, label - 4); ctx.restore();
      });
      weights.forEach((row, q) => row.forEach((w, k) => {
        const shade = Math.round(255 * (1 - w));
        ctx.fillStyle = `rgb(${shade},${shade},255)`;
        ctx.fillRect(label + k * cell, label + q * cell, cell, cell);
      }));
      canvas.setAttribute("aria-label", `attention of layer ${layer + 1}, head ${head + 1}: rows are the pieces that look, columns the pieces looked at; darker is more weight`);
    }

    function render(r) {
      answers.replaceChildren();
      const sentence = el("p", { class: "mlml-filled" });
      r.filled.slice(1, -1).forEach((p, i) => { // pieces glued back into words, as MLMTokenizer.decode does
        const glued = p.startsWith("##") && i > 0, text = glued ? p.slice(2) : p;
        if (i > 0 && !glued) sentence.append(" ");
        const mask = r.masks.find((x) => x.position === i + 1);
        sentence.append(mask ? el("mark", { text, "data-token": p }) : document.createTextNode(text));
      });
      answers.append(el("p", { class: "mlml-caption", text: "With each mask's first choice filled in:" }), sentence);
      r.masks.forEach((mask, i) => {
        const heading = `[MASK] ${i + 1}` + (r.masks.length > 1 && mask.filledAs ? `, filled ${ordinal(mask.filledAs)}` : "");
        const list = el("ol", { class: "mlml-top", "aria-label": heading });
        for (const { token, prob } of mask.top) {
          const bar = el("span", { class: "mlml-bar" });
          bar.style.width = `${Math.max(1, prob * 100).toFixed(1)}%`;
          list.append(el("li", { "data-token": token, "data-prob": String(prob) },
            el("span", { class: "mlml-piece", text: token }), el("span", { class: "mlml-track" }, bar),
            el("span", { class: "mlml-p", text: `${(prob * 100).toFixed(1)}%` })));
        }
        answers.append(el("div", { class: "mlml-mask" }, el("p", { class: "mlml-heading", text: heading }), list));
      });
      layerPick.replaceChildren(...Array.from({ length: r.layers }, (_, l) => el("option", { value: l, text: `layer ${l + 1}` })));
      headPick.replaceChildren(...Array.from({ length: r.heads }, (_, h) => el("option", { value: h, text: `head ${h + 1}` })));
      attention.hidden = false;
      showAttention();
    }

    async function ask() {
      const text = input.value, oneAtATime = root.querySelector("input[value=one]").checked;
      error.textContent = "";
      root.dataset.state = "busy";
      input.removeAttribute("aria-invalid");
      button.disabled = true;
      const clicked = performance.now();
      status.textContent = api.last || api.tokenizer ? "Thinking…" : "Loading the model (once; it stays for this page)…";
      try {
        const r = await fillMask(text, { oneAtATime });
        const m = await load();
        api.tokenizer = m.tokenizer; api.loadMs = m.loadMs; api.last = r;
        if (api.firstAnswerMs === null) api.firstAnswerMs = performance.now() - clicked;
        render(r);
        status.textContent = `Answered in your browser in ${Math.max(1, Math.round(r.ms))} ms (${r.masks.length > 1 ? (oneAtATime ? `${r.masks.length} passes, one mask at a time` : "one pass, all masks at once") : "one pass"}).`;
        root.dataset.state = "answered";
      } catch (e) {
        error.textContent = e instanceof InputError ? e.message
          : `The model could not run in this browser (${e && e.message ? e.message : e}). The chapter's printed answers stand.`;
        if (e instanceof InputError) input.setAttribute("aria-invalid", "true");
        status.textContent = "";
        root.dataset.state = "error";
      } finally {
        button.disabled = false;
      }
    }

    form.addEventListener("submit", (event) => { event.preventDefault(); ask(); });
    layerPick.addEventListener("change", showAttention);
    headPick.addEventListener("change", showAttention);
    root.dataset.state = "ready";
  }

  window.mlmLive = { Tokenizer, fillMask, load, paths: PATHS };
  const start = () => document.querySelectorAll(".mlm-live").forEach(setup);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
