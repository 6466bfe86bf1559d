// Q-HEART page: pick or upload an ECG, see it plotted, ask a question, read the answer.
// Plain JavaScript against the same API other clients use (/v1/*); nothing is loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const TYPE_NAMES = {
  "single-verify": "yes / no",
  "single-choose": "choose between options",
  "single-query": "which leads, ranges, features",
};
const MAX_CHIPS = 3;
const state = { source: null, plotUrl: null };

function token() { return sessionStorage.getItem("qheart-token") || ""; }

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", "Bearer " + token());
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    const error = new Error(body ? `${body.error}: ${body.detail}` : `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response;
}

function showError(error) {
  const box = $("error");
  box.textContent = error ? String(error.message || error) : "";
  box.hidden = !error;
  if (error && error.status === 401) $("token-box").open = true;
}

function sourceForm() {
  const form = new FormData();
  if (state.source.kind === "example") {
    form.append("example", state.source.id);
  } else {
    for (const file of state.source.files) form.append("files", file, file.name);
    const rate = $("sample-rate").value.trim();
    if (rate) form.append("sample_rate", rate);
  }
  return form;
}

async function showPlot(response, label, truth) {
  const blob = await response.blob();
  if (state.plotUrl) URL.revokeObjectURL(state.plotUrl);
  state.plotUrl = URL.createObjectURL(blob);
  $("ecg-plot").src = state.plotUrl;
  $("ecg-label").textContent = label;
  $("ecg-truth").textContent = truth ? "Known findings (synthetic): " + truth : "";
  $("ecg-truth").hidden = !truth;
  $("ecg-view").hidden = false;
}

function updateAskButton() {
  $("ask-button").disabled = !(state.source && $("question").value.trim());
}

async function chooseExample(example, button) {
  showError(null);
  document.querySelectorAll(".examples button").forEach((b) => b.classList.remove("selected"));
  button.classList.add("selected");
  $("files").value = "";
  state.source = { kind: "example", id: example.id };
  updateAskButton();
  try {
    const response = await api(`/v1/examples/${encodeURIComponent(example.id)}/plot.png`);
    await showPlot(response, `Example: ${example.title}`, example.report);
  } catch (error) { showError(error); }
}

async function chooseFiles() {
  showError(null);
  const files = Array.from($("files").files);
  document.querySelectorAll(".examples button").forEach((b) => b.classList.remove("selected"));
  if (!files.length) { state.source = null; updateAskButton(); return; }
  state.source = { kind: "files", files };
  updateAskButton();
  $("ecg-view").hidden = true;
  try {
    const response = await api("/v1/plot", { method: "POST", body: sourceForm() });
    await showPlot(response, "Uploaded: " + files.map((f) => f.name).join(", "), "");
  } catch (error) {
    state.source = null;  // an unreadable upload cannot be asked about
    updateAskButton();
    showError(error);
  }
}

function renderAnswer(answer) {
  $("answer").textContent = answer.answer.join(", ") || "(no option chosen)";
  const serving = answer.serving || {};
  $("answer-meta").textContent =
    `question type ${answer.question_type} · decode ${answer.decode}` +
    (serving.total_ms !== undefined ? ` · ${Math.round(serving.total_ms)} ms` : "") +
    (serving.batch_size ? ` · batch of ${serving.batch_size}` : "") +
    (answer.raw_text ? ` · generated text: “${answer.raw_text}”` : "");
  const notes = $("notes");
  notes.replaceChildren(...answer.notes.map((n) => Object.assign(document.createElement("li"), { textContent: n })));

  $("hint").textContent = answer.hint ? `Given to the model — ${answer.hint}` : "";
  $("hint").hidden = !answer.hint;
  $("measurements").textContent = answer.measurements || "";
  $("measurements-box").hidden = !answer.measurements;

  const chosen = new Set(answer.answer);
  const rows = answer.options.map((option) => [option, answer.scores ? answer.scores[option] : null]);
  if (answer.scores) rows.sort((a, b) => b[1] - a[1]);
  const tbody = $("scores").querySelector("tbody");
  tbody.replaceChildren(...rows.map(([option, score]) => {
    const tr = document.createElement("tr");
    if (chosen.has(option)) tr.className = "chosen";
    const name = Object.assign(document.createElement("td"), { textContent: option });
    const num = Object.assign(document.createElement("td"), {
      className: "num", textContent: score === null ? "–" : score.toFixed(3) });
    const barCell = Object.assign(document.createElement("td"), { className: "barcell" });
    if (score !== null) {
      const bar = Object.assign(document.createElement("div"), { className: "bar" });
      bar.style.width = `${Math.max(0, Math.min(1, score)) * 100}%`;
      barCell.append(bar);
    }
    tr.append(name, num, barCell);
    return tr;
  }));

  $("reports").replaceChildren(...answer.reports.map((r) => {
    const li = document.createElement("li");
    const sim = Object.assign(document.createElement("span"), { className: "sim", textContent: r.similarity.toFixed(3) });
    const id = Object.assign(document.createElement("span"), { className: "muted", textContent: ` (ECG ${r.ecg_id})` });
    li.append(sim, " ", r.report, id);
    return li;
  }));
  $("answer-panel").hidden = false;
  $("answer-panel").dataset.ready = "true";
}

async function ask(event) {
  event.preventDefault();
  if (!state.source) return;
  showError(null);
  const form = sourceForm();
  form.append("question", $("question").value.trim());
  form.append("decode", $("decode").value);
  $("ask-button").disabled = true;
  $("ask-button").textContent = "Asking…";
  $("answer-panel").dataset.ready = "false";
  try {
    const response = await api("/v1/ask", { method: "POST", body: form });
    renderAnswer(await response.json());
  } catch (error) {
    showError(error);
  } finally {
    $("ask-button").textContent = "Ask";
    updateAskButton();
  }
}

function renderSuggestions(byType) {
  const box = $("suggestions");
  const list = $("question-list");
  box.replaceChildren();
  list.replaceChildren();
  const kinds = [...Object.keys(TYPE_NAMES), ...Object.keys(byType).filter((k) => !(k in TYPE_NAMES))];
  for (const kind of kinds.filter((k) => byType[k] && byType[k].length)) {
    const row = document.createElement("div");
    row.append(Object.assign(document.createElement("span"), {
      className: "kind", textContent: `${TYPE_NAMES[kind] || kind}:` }));
    byType[kind].forEach((q, i) => {
      list.append(Object.assign(document.createElement("option"), { value: q }));
      if (i >= MAX_CHIPS) return;  // the rest are offered while typing (datalist)
      const button = Object.assign(document.createElement("button"), { type: "button", textContent: q });
      button.addEventListener("click", () => { $("question").value = q; updateAskButton(); $("question").focus(); });
      row.append(button);
    });
    box.append(row);
  }
}

async function loadInfo() {
  try {
    const info = await (await api("/v1/model")).json();
    const m = info.model || {};
    const llm = m.llm && typeof m.llm === "object" ? m.llm.name : m.llm;
    const tail = (path) => String(path).split("/").filter(Boolean).slice(-2).join("/");
    $("model-info").textContent = [llm && `LLM ${tail(llm)}`, m.model_dir && `model ${tail(m.model_dir)}`,
      m.retrieval === false && "no report retrieval", `qheart ${info.version}`].filter(Boolean).join(" · ");
    renderSuggestions(await (await api("/v1/questions")).json());
    const examples = await (await api("/v1/examples")).json();
    const box = $("examples");
    box.replaceChildren(...examples.map((example) => {
      const button = Object.assign(document.createElement("button"), {
        type: "button", textContent: example.title, title: example.report });
      button.dataset.example = example.id;
      button.addEventListener("click", () => chooseExample(example, button));
      return button;
    }));
    if (!examples.length) box.textContent = "none bundled";
    showError(null);
  } catch (error) {
    $("model-info").textContent = "model information unavailable";
    showError(error);
  }
}

$("files").addEventListener("change", chooseFiles);
$("question").addEventListener("input", updateAskButton);
$("ask-form").addEventListener("submit", ask);
$("token").value = token();
$("token-save").addEventListener("click", () => {
  sessionStorage.setItem("qheart-token", $("token").value.trim());
  loadInfo();
});
loadInfo();
