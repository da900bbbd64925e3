// The page's whole behaviour: who you are, upload with progress, your recordings. No framework.
"use strict";

const $ = (id) => document.getElementById(id);
// Who you are, for this tab only. sessionStorage, not localStorage: the token is
// the only key to your recordings, and it should not outlive the tab on a shared
// or borrowed computer, nor be readable from every other tab of this site.
const IDENTITY_KEY = "records.identity";
const PAGE_SIZE = 20;
const user = { id: null, token: null };
const listing = { next: null, loading: false, done: false };

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// Problem details (RFC 9457) carry a sentence for people in `detail`.
function problemText(status, body) {
  try {
    const problem = JSON.parse(body);
    if (problem.detail) return `${problem.title || "Error"} (${status}): ${problem.detail}`;
  } catch (_) { /* not JSON: fall through */ }
  return `The server answered ${status}.`;
}

const offline = "The request did not reach the server; check the connection and try again.";

function bearer() {
  return { Authorization: `Bearer ${user.token}` };
}

function remember(id, token) {
  user.id = id;
  user.token = token;
  sessionStorage.setItem(IDENTITY_KEY, JSON.stringify(user));
  $("user-id").textContent = id;
  $("token").textContent = token;
  $("strangers").hidden = true;
  $("identity").hidden = false;
  $("upload-step").hidden = false;
  $("recordings-step").hidden = false;
}

function forget() {
  sessionStorage.removeItem(IDENTITY_KEY);
  $("rotated").hidden = true;
  user.id = user.token = null;
  $("strangers").hidden = false;
  for (const id of ["identity", "upload-step", "result-step", "recordings-step"]) $(id).hidden = true;
  $("recordings").replaceChildren();
  $("player").removeAttribute("src");
  showError("");
}

$("register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  let response;
  try {
    response = await fetch("/register", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: $("name").value }),
    });
  } catch (_) {
    return showError(offline);
  }
  const body = await response.text();
  if (response.status !== 201) return showError(problemText(response.status, body));
  const registered = JSON.parse(body);
  remember(registered.user_id, registered.access_token);
  reloadRecordings();
});

// A token alone is enough: the listing says whose it is.
$("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  user.token = $("sign-in-token").value.trim();
  const page = await fetchPage(null);
  if (!page) return;
  remember(page.user_id, user.token);
  $("sign-in-token").value = "";
  resetRecordings();
  showPage(page);
});

$("forget-button").addEventListener("click", forget);

// A leaked token is replaced, not an account lost: the old one dies at once, everywhere.
$("rotate-button").addEventListener("click", async () => {
  if (!confirm("Replace your access token? The current one stops working at once, everywhere.")) return;
  showError("");
  let response;
  try {
    response = await fetch("/token", { method: "POST", headers: bearer() });
  } catch (_) {
    return showError(offline);
  }
  const body = await response.text();
  if (response.status !== 201) return showError(problemText(response.status, body));
  const rotated = JSON.parse(body);
  remember(rotated.user_id, rotated.access_token);
  $("rotated").hidden = false;
});

// ---- Your recordings ----

async function fetchPage(cursor) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (cursor) query.set("cursor", cursor);
  let response;
  try {
    response = await fetch(`/records?${query}`, { headers: bearer() });
  } catch (_) {
    showError(offline);
    return null;
  }
  const body = await response.text();
  if (response.status === 401) {
    showError("That access token is not one this service knows. Check it, or register anew.");
    return null;
  }
  if (response.status !== 200) {
    showError(problemText(response.status, body));
    return null;
  }
  return JSON.parse(body);
}

function resetRecordings() {
  $("recordings").replaceChildren();
  Object.assign(listing, { next: null, loading: false, done: false });
  $("more-button").hidden = true;
  $("no-recordings").hidden = true;
}

async function reloadRecordings() {
  resetRecordings();
  await loadMore();
}

async function loadMore() {
  if (listing.loading || listing.done) return;
  listing.loading = true;
  $("more-button").disabled = true;
  const page = await fetchPage(listing.next);
  listing.loading = false;
  $("more-button").disabled = false;
  if (page) showPage(page);
}

function showPage(page) {
  for (const record of page.records) $("recordings").append(recordingItem(record));
  listing.next = page.next;
  listing.done = page.next === null;
  $("more-button").hidden = listing.done;
  $("no-recordings").hidden = $("recordings").children.length > 0;
}

function describe(record) {
  const minutes = Math.floor(record.duration_s / 60);
  const seconds = Math.round(record.duration_s % 60).toString().padStart(2, "0");
  const size = record.size_bytes < 1e6
    ? `${Math.max(1, Math.round(record.size_bytes / 1e3))} kB`
    : `${(record.size_bytes / 1e6).toFixed(1)} MB`;
  const date = new Date(record.created_at).toLocaleString();
  return `${minutes}:${seconds} · ${size} · ${date}`;
}

function recordingItem(record) {
  const item = $("recording-template").content.firstElementChild.cloneNode(true);
  item.dataset.recordId = record.record_id;
  item.querySelector(".recording-name").textContent = record.original_name;
  item.querySelector(".recording-facts").textContent = describe(record);
  item.querySelector("audio").src = record.url;
  item.querySelector(".download").href = record.url;
  item.querySelector(".copy").addEventListener("click", (event) => copyLink(record.url, event.target));
  item.querySelector(".delete").addEventListener("click", () => deleteRecording(record, item));
  return item;
}

async function deleteRecording(record, item) {
  if (!confirm(`Delete “${record.original_name}”? Its link will stop working, for everyone.`)) return;
  showError("");
  let response;
  try {
    response = await fetch(`/record?id=${encodeURIComponent(record.record_id)}`, {
      method: "DELETE",
      headers: bearer(),
    });
  } catch (_) {
    return showError(offline);
  }
  if (response.status === 204 || response.status === 404) {  // 404: it was already gone
    item.querySelector("audio").removeAttribute("src");
    item.remove();
    $("no-recordings").hidden = $("recordings").children.length > 0;
    return;
  }
  showError(problemText(response.status, await response.text()));
}

$("more-button").addEventListener("click", loadMore);
// The next page loads by itself as the button scrolls into view.
new IntersectionObserver((entries) => {
  if (entries.some((entry) => entry.isIntersecting) && !$("more-button").hidden) loadMore();
}).observe($("more-button"));

async function copyLink(url, button) {
  try {
    await navigator.clipboard.writeText(url);
    button.textContent = "Copied";
  } catch (_) {
    showError("Copying needs clipboard permission; use the Download link's address instead.");
  }
}

// ---- Upload ----

const dropZone = $("drop-zone");
dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("dragging"); });
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  if (event.dataTransfer.files.length) $("file").files = event.dataTransfer.files;
  $("drop-text").textContent = $("file").files[0]?.name || "Drop a WAV here, or choose one";
});
$("file").addEventListener("change", () => {
  $("drop-text").textContent = $("file").files[0]?.name || "Drop a WAV here, or choose one";
});

// XMLHttpRequest, not fetch: only it reports upload progress.
$("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  showError("");
  const file = $("file").files[0];
  if (!file) return showError("Choose a WAV file first.");
  const form = new FormData();
  form.append("user_id", String(user.id));
  form.append("access_token", user.token);
  form.append("file", file);

  const request = new XMLHttpRequest();
  request.open("POST", "/record");
  $("progress").hidden = false;
  $("progress").value = 0;
  $("upload-button").disabled = true;
  request.upload.addEventListener("progress", (progress) => {
    if (!progress.lengthComputable) return;
    const percent = Math.round((100 * progress.loaded) / progress.total);
    $("progress").value = percent;
    $("progress-text").textContent = percent < 100 ? `Uploading… ${percent}%` : "Converting…";
  });
  request.addEventListener("load", () => {
    $("upload-button").disabled = false;
    if (request.status !== 201) {
      $("progress-text").textContent = "";
      return showError(problemText(request.status, request.responseText));
    }
    const created = JSON.parse(request.responseText);
    $("progress-text").textContent = `Done: ${created.duration_s} s of audio, ${created.size_bytes} bytes of MP3.`;
    $("player").src = created.url;
    $("link").href = created.url;
    $("link").textContent = created.url;
    $("download-link").href = created.url;
    $("result-step").hidden = false;
    reloadRecordings();
  });
  request.addEventListener("error", () => {
    $("upload-button").disabled = false;
    showError("The upload did not reach the server; check the connection and try again.");
  });
  request.send(form);
});

$("copy-button").addEventListener("click", (event) => copyLink($("link").textContent, event.target));

// ---- Start: a tab that already knows you carries on ----

const remembered = JSON.parse(sessionStorage.getItem(IDENTITY_KEY) || "null");
if (remembered?.id && remembered?.token) {
  remember(remembered.id, remembered.token);
  reloadRecordings();
}
