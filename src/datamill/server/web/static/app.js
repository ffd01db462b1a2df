// datamill web app: drag-and-drop upload with progress, live polling, and the adapt form's live checks.
// Plain script, no build step. Every POST carries the session's CSRF token in a header.
"use strict";

const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

async function sendJSON(method, url, body) {
  const response = await fetch(url, {
    method,
    credentials: "same-origin",
    headers: { "content-type": "application/json", accept: "application/json", "x-csrf-token": csrfToken() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data;
  try { data = await response.json(); } catch (_) { data = { message: response.statusText }; }
  if (response.ok && data && typeof data.balance === "number") showBalance(data.balance);
  return { ok: response.ok, status: response.status, data };
}

// The header's credit balance: every script answer that carries the tenant's balance refreshes it, so it
// follows reservations and charges while a page stays open.
function showBalance(balance) {
  const slot = document.getElementById("credit-balance");
  if (slot) slot.textContent = `${balance.toFixed(2)} credits`;
}

const getJSON = (url) => sendJSON("GET", url);

function describeError(data) {
  const issues = (data && data.errors) || [];
  if (issues.length) return issues.map((i) => `${i.field}: ${i.reason}`).join("; ");
  return (data && data.message) || "the request failed";
}

// ---- upload -------------------------------------------------------------------------------------------

function putFile(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress((100 * e.loaded) / e.total); };
    xhr.onload = () => {
      if (xhr.status < 300) return resolve();
      let data = {};
      try { data = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
      reject(new Error(describeError(data)));
    };
    xhr.onerror = () => reject(new Error("the upload was interrupted; check the connection and try again"));
    xhr.send(file);
  });
}

async function uploadFile(zone, file) {
  const status = document.getElementById("upload-status");
  const bar = document.getElementById("upload-progress");
  const percent = document.getElementById("upload-percent");
  const error = document.getElementById("upload-error");
  error.hidden = true;
  const limit = Number(zone.dataset.maxBytes);
  if (limit && file.size > limit) {
    error.textContent = `${file.name} is larger than the upload limit of ${limit} bytes`;
    error.hidden = false;
    return;
  }
  document.getElementById("upload-name").textContent = file.name;
  status.hidden = false;
  const show = (p) => { bar.value = p; percent.textContent = `${Math.round(p)}%`; };
  show(0);
  try {
    const start = await sendJSON("POST", "/datasets/upload", { name: file.name, size_bytes: file.size });
    if (!start.ok) throw new Error(describeError(start.data));
    await putFile(start.data.upload_url, file, show);
    show(100);
    const done = await sendJSON("POST", `/datasets/${start.data.dataset_id}/upload/complete`, { size_bytes: file.size });
    if (!done.ok) throw new Error(describeError(done.data));
    window.location.href = done.data.url;
  } catch (e) {
    status.hidden = true;
    error.textContent = e.message;
    error.hidden = false;
  }
}

function setupUpload() {
  const zone = document.getElementById("dropzone");
  if (!zone) return;
  const input = document.getElementById("file-input");
  input.addEventListener("change", () => { if (input.files.length) uploadFile(zone, input.files[0]); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer.files.length) uploadFile(zone, e.dataTransfer.files[0]);
  });
}

// ---- polling ------------------------------------------------------------------------------------------

function setupStatusPoll() {
  const facts = document.querySelector("[data-poll-status]");
  if (!facts) return;
  const tick = async () => {
    const answer = await getJSON(facts.dataset.pollStatus);
    if (answer.ok && answer.data.status !== "pending") return window.location.reload();
    setTimeout(tick, 700);
  };
  setTimeout(tick, 500);
}

const text = (id, value) => { const el = document.getElementById(id); if (el) el.textContent = value; };
const num = (v) => (v === null || v === undefined ? "–" : Number(v).toLocaleString("en"));

function showRun(run) {
  document.getElementById("run-progress").value = run.percent;
  text("run-percent", `${run.percent}%`);
  const status = document.getElementById("run-status");
  status.textContent = run.status;
  status.className = `status status-${run.status}`;
  text("run-rows", `${num(run.processed_rows)} / ${num(run.total_rows)}`);
  text("run-rate", `${run.rows_per_s === null ? "–" : run.rows_per_s} rows/s`);
  text("run-tokens", num(run.tokens_estimated));
  text("run-cost", `$${run.cost_usd.toFixed(4)}`);
  text("run-out", num(run.rows_out));
  text("run-rejected", num(run.rows_rejected));
  text("run-eval", run.evaluation_status || "–");
  const cancelBox = document.getElementById("run-cancel-box");
  if (cancelBox) cancelBox.hidden = !run.active;
  const error = document.getElementById("run-error");
  error.hidden = !run.error;
  error.textContent = run.error || "";
}

function setupRunCancel() {
  const button = document.getElementById("run-cancel");
  if (!button) return;
  button.addEventListener("click", async () => {
    if (!window.confirm("Cancel this run? The rows finished so far stay downloadable.")) return;
    button.disabled = true;
    const answer = await sendJSON("POST", button.dataset.cancel);
    if (answer.ok) return showRun(answer.data.run);
    text("run-cancel-error", describeError(answer.data));
    button.disabled = false;
  });
}

function setupRunPoll() {
  const card = document.querySelector("[data-poll-run]");
  if (!card) return;
  setupRunCancel();
  const finalEval = ["succeeded", "failed", "skipped"];
  const tick = async () => {
    const answer = await getJSON(card.dataset.pollRun);
    const run = answer.ok && answer.data.run;
    if (run) {
      showRun(run);
      if (!run.active) document.getElementById("run-done").hidden = false;
      if (!run.active && finalEval.includes(run.evaluation_status)) {
        card.dataset.active = "false";
        card.dataset.finished = "true";
        return;
      }
    }
    setTimeout(tick, 700);
  };
  tick();
}

// ---- adapt form ---------------------------------------------------------------------------------------

const ROLES = {
  prompt: ["prompt", "completion", "context", "image"],
  universal_prompt: ["universal_prompt", "completion", "context", "image"],
  chat: ["chat", "image"],
};

const field = (form, name) => form.querySelector(`[name="${name}"]`);

function adaptBody(form) {
  const mode = form.querySelector('input[name="mode"]:checked').value;
  const mapping = {};
  for (const role of ROLES[mode]) {
    if (role === "context") {
      const cols = [...form.querySelectorAll('input[name="context"]:checked')].map((c) => c.value);
      if (cols.length) mapping.context = cols;
    } else {
      const value = field(form, role).value.trim();
      if (value) mapping[role] = value;
    }
  }
  const recipes = {};
  for (const box of form.querySelectorAll('input[name="recipe"]')) recipes[box.value] = box.checked;
  const brand = {
    safety_categories: [...form.querySelectorAll('input[name="safety"]:checked')].map((c) => c.value),
    hallucination_mitigation: field(form, "hallucination_mitigation").checked,
  };
  if (field(form, "length").value) brand.length = field(form, "length").value;
  if (field(form, "blueprint").value.trim()) brand.blueprint = field(form, "blueprint").value;
  const body = {
    column_mapping: mapping,
    recipe_specification: { recipes },
    training_type: field(form, "training_type").value,
    brand_controls: brand,
    language_expansion: null,
  };
  const kind = field(form, "expansion").value;
  if (kind) {
    const rate = field(form, "sample_rate").value;
    const expansion = { type: kind, sample_rate: rate === "" ? null : Number(rate) };
    const split = (v) => v.split(",").map((s) => s.trim()).filter(Boolean);
    if (kind === "translate") expansion.languages = split(field(form, "languages").value);
    else expansion.pairs = split(field(form, "pairs").value).map((p) => {
      const [country, language] = p.split(":").map((s) => s.trim());
      return language === undefined ? p : { country, language };
    });
    body.language_expansion = expansion;
  }
  const maxRows = field(form, "max_rows").value;
  if (maxRows) body.job_specification = { max_rows: Number(maxRows) };
  const model = field(form, "model");
  if (model && model.value && model.value !== model.dataset.default) body.model = model.value;
  for (const name of ["custom_steps", "prompt_templates"]) {
    const text = field(form, name).value.trim();
    if (!text) continue;
    try {
      body[name] = JSON.parse(text);
    } catch (error) {
      throw { field: name, reason: `not valid JSON: ${error.message}` };
    }
  }
  return body;
}

// The form's body, or null after showing why it cannot be built (a JSON field that does not parse).
function adaptBodyOrIssue(form) {
  try {
    return adaptBody(form);
  } catch (issue) {
    if (!issue || !issue.field) throw issue;
    showIssues(form, [issue]);
    return null;
  }
}

function showIssues(form, issues) {
  for (const slot of form.querySelectorAll("[data-issue]")) slot.textContent = "";
  const slots = [...form.querySelectorAll("[data-issue]")];
  for (const issue of issues) {
    // The most specific slot whose field the issue's field starts with.
    const slot = slots
      .filter((s) => issue.field === s.dataset.issue || issue.field.startsWith(`${s.dataset.issue}.`) || issue.field.startsWith(`${s.dataset.issue}[`))
      .sort((a, b) => b.dataset.issue.length - a.dataset.issue.length)[0];
    if (slot) slot.textContent = (slot.textContent ? `${slot.textContent} ` : "") + issue.reason;
  }
  const list = form.querySelector("ul.issues") || document.getElementById("issues");
  list.innerHTML = "";
  for (const issue of issues) {
    const item = document.createElement("li");
    item.textContent = `${issue.field}: ${issue.reason}`;
    list.appendChild(item);
  }
}

function clearEstimate() {
  for (const id of ["est-credits", "est-cost", "est-minutes", "est-rows", "est-calls", "est-model"]) text(id, "–");
}

function showEstimate(e) {
  text("est-credits", num(e.credits));
  text("est-cost", `$${e.cost_usd.toFixed(4)}`);
  text("est-minutes", e.minutes.toFixed(2));
  text("est-rows", `${num(e.rows_in)} → ${num(e.rows_out)}`);
  text("est-calls", num(e.calls));
  text("est-model", e.model);
}

function setupAdapt() {
  const form = document.getElementById("adapt-form");
  if (!form) return;
  const launch = document.getElementById("launch");
  const state = document.getElementById("est-state");
  let sequence = 0;
  let timer = null;
  let touched = false; // until the user changes something, a missing mapping is not an error to show

  const applyMode = () => {
    const mode = form.querySelector('input[name="mode"]:checked').value;
    for (const role of form.querySelectorAll("[data-role]")) role.hidden = !ROLES[mode].includes(role.dataset.role);
  };

  const check = async () => {
    const mine = ++sequence;
    state.textContent = "Checking…";
    form.dataset.state = "checking";
    const body = adaptBodyOrIssue(form);
    if (body === null) {
      clearEstimate();
      state.textContent = "Fix the issues above to see the estimate.";
      launch.disabled = true;
      form.dataset.state = "invalid";
      return;
    }
    const answer = await sendJSON("POST", form.dataset.check, body);
    if (mine !== sequence) return; // a newer check is on its way
    if (answer.ok) {
      showIssues(form, []);
      showEstimate(answer.data);
      const short = answer.data.credits > answer.data.balance;
      state.textContent = short ? `Your balance (${answer.data.balance} credits) does not cover this run.` : "Ready to launch.";
      launch.disabled = short;
    } else {
      clearEstimate();
      const issues = (answer.data && answer.data.errors) || [];
      const all = issues.length ? issues : [{ field: "request", reason: describeError(answer.data) }];
      const shown = touched ? all : all.filter((i) => !i.field.startsWith("column_mapping"));
      showIssues(form, shown);
      state.textContent = shown.length ? "Fix the issues above to see the estimate." : "Choose the columns to see an estimate.";
      launch.disabled = true;
    }
    form.dataset.state = answer.ok ? "valid" : "invalid";
  };

  const schedule = () => { clearTimeout(timer); timer = setTimeout(check, 250); };
  form.addEventListener("change", () => { touched = true; applyMode(); schedule(); });
  form.addEventListener("input", () => { touched = true; schedule(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    launch.disabled = true;
    state.textContent = "Launching…";
    const body = adaptBodyOrIssue(form);
    if (body === null) return void (state.textContent = "Fix the issues above to launch.");
    const answer = await sendJSON("POST", form.dataset.launch, body);
    if (answer.ok) return (window.location.href = answer.data.url);
    const issues = (answer.data && answer.data.errors) || [];
    showIssues(form, issues.length ? issues : [{ field: "request", reason: describeError(answer.data) }]);
    state.textContent = describeError(answer.data);
  });
  applyMode();
  check();
}

// ---- generate pages -----------------------------------------------------------------------------------

// A form's fields as a JSON body: empty fields are left out, numbers are numbers, data-kind="bool"
// checkboxes are booleans, data-kind="list" checkboxes of one name make a list of the checked values.
function formBody(form) {
  const body = {};
  for (const el of form.elements) {
    if (!el.name || el.type === "submit" || el.type === "button") continue;
    if (el.type === "radio" && !el.checked) continue;
    const kind = el.dataset.kind;
    if (kind === "list") {
      if (el.checked) (body[el.name] = body[el.name] || []).push(el.value);
    } else if (kind === "bool") {
      body[el.name] = el.checked;
    } else if (el.value.trim() !== "") {
      body[el.name] = el.type === "number" || kind === "int" ? Number(el.value) : el.value;
    }
  }
  return body;
}

async function sendForm(url, form) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { accept: "application/json", "x-csrf-token": csrfToken() },
    body: new FormData(form),
  });
  let data;
  try { data = await response.json(); } catch (_) { data = { message: response.statusText }; }
  if (response.ok && data && typeof data.balance === "number") showBalance(data.balance);
  return { ok: response.ok, status: response.status, data };
}

// The header's credit balance: every script answer that carries the tenant's balance refreshes it, so it
// follows reservations and charges while a page stays open.
function showBalance(balance) {
  const slot = document.getElementById("credit-balance");
  if (slot) slot.textContent = `${balance.toFixed(2)} credits`;
}

function setupJsonForms() {
  for (const form of document.querySelectorAll("form[data-json-form]")) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const button = form.querySelector('button[type="submit"]');
      button.disabled = true;
      form.dataset.state = "sending";
      const answer = "multipart" in form.dataset
        ? await sendForm(form.action, form)
        : await sendJSON("POST", form.action, formBody(form));
      if (answer.ok) return (window.location.href = answer.data.url);
      const issues = (answer.data && answer.data.errors) || [];
      showIssues(form, issues.length ? issues : [{ field: "request", reason: describeError(answer.data) }]);
      form.dataset.state = "invalid";
      button.disabled = false;
    });
  }
}

// Reload the page once a polled JSON's status leaves data-poll-while; meanwhile fill [data-fill] fields.
function setupPollReload() {
  const box = document.querySelector("[data-poll-reload]");
  if (!box) return;
  const waiting = box.dataset.pollWhile.split(",");
  const tick = async () => {
    const answer = await getJSON(box.dataset.pollReload);
    if (answer.ok) {
      for (const slot of box.querySelectorAll("[data-fill]")) {
        const value = answer.data[slot.dataset.fill];
        if (value !== undefined && value !== null) slot.textContent = value;
      }
      if (!waiting.includes(answer.data.status)) return window.location.reload();
    }
    setTimeout(tick, 700);
  };
  setTimeout(tick, 500);
}

function setupPostButtons() {
  for (const button of document.querySelectorAll("button[data-post]")) {
    button.addEventListener("click", async () => {
      if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
      button.disabled = true;
      const answer = await sendJSON("POST", button.dataset.post);
      if (answer.ok && answer.data && answer.data.url) return (window.location.href = answer.data.url);
      if (answer.ok) return window.location.reload();
      text(`${button.id}-error`, describeError(answer.data));
      button.disabled = false;
    });
  }
}

function setupZip() {
  const button = document.getElementById("zip-download");
  if (!button) return;
  button.addEventListener("click", async () => {
    button.disabled = true;
    text("zip-state", "Building the ZIP…");
    for (;;) {
      const answer = await getJSON(button.dataset.zip);
      if (!answer.ok) { text("zip-state", describeError(answer.data)); break; }
      if (answer.data.ready) {
        text("zip-state", `Ready (${num(answer.data.size_bytes)} bytes).`);
        window.location.href = answer.data.url;
        break;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    button.disabled = false;
  });
}

function setupSpecEditor() {
  const form = document.getElementById("spec-editor");
  if (!form) return;
  const area = document.getElementById("spec-yaml");
  const state = document.getElementById("yaml-state");
  const save = document.getElementById("spec-save");
  let sequence = 0;
  let timer = null;
  let touched = false; // until the user changes something, a missing mapping is not an error to show
  const show = (answer) => {
    const issues = answer.ok ? [] : (answer.data.errors || []).length ? answer.data.errors : [{ field: "content_yaml", reason: describeError(answer.data) }];
    showIssues(form, issues);
    form.dataset.state = answer.ok ? "valid" : "invalid";
    save.disabled = !answer.ok;
  };
  const check = async () => {
    const mine = ++sequence;
    form.dataset.state = "checking";
    const answer = await sendJSON("POST", form.dataset.check, { content_yaml: area.value });
    if (mine !== sequence) return;
    show(answer);
    state.textContent = answer.ok ? `Valid: ${answer.data.axes.length} properties (${answer.data.axes.join(", ")}).` : "Fix the issues below to save.";
  };
  area.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 300); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    save.disabled = true;
    const answer = await sendJSON("POST", form.dataset.save, { content_yaml: area.value });
    if (answer.ok) return (window.location.href = answer.data.url);
    show(answer);
    state.textContent = describeError(answer.data);
  });
}

// ---- error pages: "Back" returns to the previous page when there is one --------------------------------

function setupHistoryBack() {
  for (const link of document.querySelectorAll("a[data-history-back]")) {
    link.addEventListener("click", (event) => {
      if (window.history.length > 1) {
        event.preventDefault();
        window.history.back();
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  setupHistoryBack();
  setupJsonForms();
  setupPollReload();
  setupPostButtons();
  setupZip();
  setupSpecEditor();
  setupUpload();
  setupStatusPoll();
  setupRunPoll();
  setupAdapt();
});
