// The review page: chapters, waveform, read-along, flags and fixes, over the JSON API of
// pipeline/review/app.py. No framework, no build step. The DOM contract (tested, scriptable):
// each word is .w with data-start-ms, data-end-ms, data-chunk; the word being spoken has
// aria-current="true"; each flag is an element with data-flag and data-chunk.
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const audio = $("audio");
const canvas = $("waveform");

const state = { book: null, chapter: null, words: [], timed: [], current: null, peaks: null,
  selected: null, flagIndex: -1, sentences: [] };

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-Narrate-Token": token },
  };
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `${res.status} ${res.statusText}`);
  return data;
}

function fmtTime(ms) {
  if (ms == null) return "–";
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function status(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.className = kind || "";
}

// --- chapters and flags -------------------------------------------------------------------

async function loadBook() {
  state.book = await api("/api/chapters");
  $("book-title").textContent = state.book.title;
  document.title = `${state.book.title} · narrate review`;
  const list = $("chapters");
  list.replaceChildren(...state.book.chapters.map((ch) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.chapter = ch.index;
    const loud = ch.loudness && ch.loudness.integrated_lufs != null ? ` · ${ch.loudness.integrated_lufs} LUFS` : "";
    b.innerHTML = `<span class="title"></span><span class="meta">${fmtTime(ch.duration_ms)}${loud}` +
      `${ch.audio_file ? "" : " · not rendered"}</span>`;
    b.querySelector(".title").textContent = `${ch.index}. ${ch.title} `;
    if (ch.flags) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = ch.flags;
      badge.title = `${ch.flags} flag(s)`;
      b.querySelector(".title").append(badge);
    }
    b.addEventListener("click", () => openChapter(ch.index));
    li.append(b);
    return li;
  }));
  const flags = $("flags");
  $("flag-count").textContent = `(${state.book.flags.length})`;
  flags.replaceChildren(...state.book.flags.map((f, k) => {
    const li = document.createElement("li");
    li.dataset.flag = f.kind;
    li.dataset.chunk = f.chunk;
    li.dataset.chapter = f.chapter;
    li.textContent = `ch. ${f.chapter} · ${f.kind}: ${f.reason || ""} — “${f.text.slice(0, 60)}”`;
    li.addEventListener("click", () => gotoFlag(k, true));
    return li;
  }));
}

async function openChapter(n, keepTime) {
  const data = await api(`/api/chapters/${n}`);
  const wasAt = keepTime ? audio.currentTime : 0;
  state.chapter = data;
  for (const b of document.querySelectorAll("#chapters button")) {
    if (Number(b.dataset.chapter) === n) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  }
  $("chapter-title").textContent = `${data.index}. ${data.title}`;
  $("stale").hidden = !data.stale;
  renderText(data);
  if (data.audio_url) {
    audio.src = `${data.audio_url}?v=${Date.now()}`;
    if (keepTime) audio.addEventListener("loadedmetadata", () => { audio.currentTime = wasAt; }, { once: true });
  } else {
    audio.removeAttribute("src");
  }
  state.peaks = data.peaks_url ? await api(data.peaks_url) : null;
  drawWaveform();
  history.replaceState(null, "", `${location.pathname}${location.search}#chapter=${n}`);
}

function renderText(data) {
  const text = $("text");
  const frag = document.createDocumentFragment();
  const flagged = new Set(data.flag_list.map((f) => f.chunk));
  let block = null;
  const wordsByChunk = new Map();
  for (const w of data.words) {
    if (!wordsByChunk.has(w.chunk)) wordsByChunk.set(w.chunk, []);
    wordsByChunk.get(w.chunk).push(w);
  }
  state.words = [];
  for (const c of data.chunks) {
    if (!block || c.heading) {
      block = document.createElement(c.heading ? "h3" : "p");
      frag.append(block);
    }
    const span = document.createElement("span");
    span.className = "chunk" + (flagged.has(c.id) ? " flagged" : "");
    span.dataset.chunk = c.id;
    for (const w of wordsByChunk.get(c.id) || []) {
      const el = document.createElement("span");
      el.className = "w" + (w.spoken !== w.text ? " respoken" : "");
      el.textContent = w.text;
      el.dataset.chunk = w.chunk;
      el.dataset.i = w.i;
      el.dataset.sentence = w.sentence;
      if (w.start_ms != null) {
        el.dataset.startMs = w.start_ms;
        el.dataset.endMs = w.end_ms;
      }
      if (w.spoken !== w.text) el.title = `spoken: ${w.spoken}`;
      el.addEventListener("click", () => { seekTo(w.start_ms); selectChunk(c.id); });
      span.append(el, " ");
      state.words.push({ el, ...w });
    }
    block.append(span);
    if (c.heading || c.pause_after !== "sentence") block = null;
  }
  text.replaceChildren(frag);
  state.timed = state.words.filter((w) => w.start_ms != null);
  state.sentences = [];
  for (const w of state.timed) {
    const last = state.sentences[state.sentences.length - 1];
    if (!last || last.sentence !== w.sentence) state.sentences.push({ sentence: w.sentence, start_ms: w.start_ms });
  }
  state.current = null;
  state.selected = null;
  $("chunk-panel").hidden = true;
}

// --- read-along ---------------------------------------------------------------------------

function seekTo(ms) {
  if (ms == null || !audio.src) return;
  audio.currentTime = ms / 1000;
  highlight();
}

function wordAt(ms) {
  // the last word that started at or before ms (binary search over start times)
  const t = state.timed;
  let lo = 0, hi = t.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (t[mid].start_ms <= ms) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found < 0 ? null : t[found];
}

function highlight() {
  const ms = audio.currentTime * 1000;
  const w = wordAt(ms + 1);
  if (w !== state.current) {
    if (state.current) state.current.el.removeAttribute("aria-current");
    state.current = w;
    if (w) {
      w.el.setAttribute("aria-current", "true");
      w.el.scrollIntoView({ block: "nearest" });
    }
  }
  drawWaveform();
}

function tick() {
  highlight();
  if (!audio.paused) requestAnimationFrame(tick);
}
audio.addEventListener("play", () => requestAnimationFrame(tick));
audio.addEventListener("seeked", highlight);
audio.addEventListener("timeupdate", highlight);

// --- waveform -----------------------------------------------------------------------------

function drawWaveform() {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, width, height);
  const p = state.peaks;
  if (!p || !p.max.length) return;
  const total = p.duration_ms || 1;
  const x = (ms) => (ms / total) * width;
  g.fillStyle = "rgba(209, 36, 47, 0.18)";
  const flagged = new Set((state.chapter.flag_list || []).map((f) => f.chunk));
  for (const c of state.chapter.chunks) {
    if (flagged.has(c.id) && c.start_ms != null) g.fillRect(x(c.start_ms), 0, Math.max(2, x(c.end_ms) - x(c.start_ms)), height);
  }
  if (state.selected) {
    const c = state.chapter.chunks.find((k) => k.id === state.selected);
    if (c && c.start_ms != null) {
      g.fillStyle = "rgba(31, 111, 235, 0.12)";
      g.fillRect(x(c.start_ms), 0, x(c.end_ms) - x(c.start_ms), height);
    }
  }
  const mid = height / 2, n = p.max.length, step = width / n;
  g.fillStyle = "#57606a";
  for (let i = 0; i < n; i++) {
    const top = mid - (p.max[i] / 127) * mid, bottom = mid - (p.min[i] / 127) * mid;
    g.fillRect(i * step, top, Math.max(1, step - 0.2), Math.max(1, bottom - top));
  }
  g.fillStyle = "#1f6feb";
  g.fillRect(x(audio.currentTime * 1000) - 1, 0, 2, height);
}
canvas.addEventListener("click", (e) => {
  if (!state.peaks) return;
  const r = canvas.getBoundingClientRect();
  seekTo(((e.clientX - r.left) / r.width) * state.peaks.duration_ms);
});
window.addEventListener("resize", drawWaveform);

// --- flags and the chunk panel ------------------------------------------------------------

async function gotoFlag(k, play) {
  const flags = state.book.flags;
  if (!flags.length) return;
  state.flagIndex = (k + flags.length) % flags.length;
  const f = flags[state.flagIndex];
  document.querySelectorAll("#flags li").forEach((li, j) => li.classList.toggle("active", j === state.flagIndex));
  if (!state.chapter || state.chapter.index !== f.chapter) await openChapter(f.chapter);
  const c = state.chapter.chunks.find((x) => x.id === f.chunk);
  selectChunk(f.chunk);
  if (c && c.start_ms != null) {
    seekTo(c.start_ms);
    if (play) audio.play().catch(() => {});
  }
  const el = document.querySelector(`#text .chunk[data-chunk="${f.chunk}"]`);
  if (el) el.scrollIntoView({ block: "center" });
}

function selectChunk(id) {
  state.selected = id;
  document.querySelectorAll("#text .chunk").forEach((el) => el.classList.toggle("selected", el.dataset.chunk === id));
  const c = state.chapter.chunks.find((x) => x.id === id);
  if (!c) return;
  $("chunk-panel").hidden = false;
  $("chunk-id").textContent = id;
  const flags = state.chapter.flag_list.filter((f) => f.chunk === id);
  $("chunk-flags").textContent = flags.map((f) => `${f.kind}: ${f.reason}`).join("; ");
  const box = $("spoken-words");
  box.replaceChildren(...c.written.map((w, k) => {
    const label = document.createElement("label");
    const span = document.createElement("span");
    span.textContent = w;
    const input = document.createElement("input");
    input.value = c.spoken[k];
    input.dataset.k = k;
    label.append(span, input);
    return label;
  }));
  drawWaveform();
}

async function runFix(promise, what) {
  status(`${what}: queued`, "running");
  let job;
  try {
    job = await promise;
  } catch (err) {
    status(`${what}: ${err.message}`, "failed");
    return;
  }
  while (job.state === "queued" || job.state === "running") {
    const progress = job.total ? ` ${job.done}/${job.total}` : "";
    status(`${what}: ${job.step || job.state}${progress}`, "running");
    await new Promise((r) => setTimeout(r, 400));
    job = await api(`/api/jobs/${job.id}`);
  }
  if (job.state === "failed") {
    status(`${what}: failed: ${job.error}`, "failed");
    return;
  }
  const r = job.result;
  status(`${what}: done · re-synthesized ${r.resynthesized.length} chunk(s)` +
    (r.chapters_rebuilt.length ? ` · rebuilt chapter(s) ${r.chapters_rebuilt.join(", ")}` : " · nothing to rebuild"));
  await loadBook();
  if (state.chapter) await openChapter(state.chapter.index, true);
  document.body.dataset.lastJob = job.id;  // after the reload: the page now shows the fix
}

$("resynthesize").addEventListener("click", () => {
  const id = state.selected;
  runFix(api(`/api/chunks/${id}/resynthesize`, {}), `re-synthesize ${id}`);
});
$("lexicon-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const match = $("lex-match").value.trim(), say = $("lex-say").value.trim();
  runFix(api("/api/lexicon", { match, say }), `pronounce “${match}”`);
});
$("spoken-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const id = state.selected;
  const spoken = [...document.querySelectorAll("#spoken-words input")].map((i) => i.value);
  runFix(api(`/api/chunks/${id}/text`, { spoken }), `spoken text of ${id}`);
});

// --- keyboard -----------------------------------------------------------------------------

document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, textarea, button, select") || e.ctrlKey || e.metaKey || e.altKey) return;
  const ms = audio.currentTime * 1000;
  if (e.key === " ") {
    e.preventDefault();
    if (audio.paused) audio.play().catch(() => {}); else audio.pause();
  } else if (e.key === "ArrowRight") {
    e.preventDefault();
    const next = state.sentences.find((s) => s.start_ms > ms + 50);
    if (next) seekTo(next.start_ms);
  } else if (e.key === "ArrowLeft") {
    e.preventDefault();
    const before = state.sentences.filter((s) => s.start_ms < ms - 300);
    if (before.length) seekTo(before[before.length - 1].start_ms);
  } else if (e.key === "n") {
    gotoFlag(state.flagIndex + 1, false);
  } else if (e.key === "p") {
    gotoFlag(state.flagIndex - 1, false);
  }
});

// --- start --------------------------------------------------------------------------------

(async () => {
  try {
    await loadBook();
    const m = location.hash.match(/chapter=(\d+)/);
    const first = state.book.chapters.find((c) => c.audio_file) || state.book.chapters[0];
    if (first) await openChapter(m ? Number(m[1]) : first.index);
    if (!token) status("read-only: open the URL `narrate review` printed (with its token) to make fixes", "failed");
    document.body.dataset.ready = "true";
  } catch (err) {
    status(`cannot load the job: ${err.message}`, "failed");
  }
})();
