// The page's whole behaviour: register, upload with progress, play. No framework.
"use strict";

const $ = (id) => document.getElementById(id);
const user = { id: null, token: null };

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

$("register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const response = await fetch("/register", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name: $("name").value }),
  });
  const body = await response.text();
  if (response.status !== 201) return showError(problemText(response.status, body));
  const registered = JSON.parse(body);
  user.id = registered.user_id;
  user.token = registered.access_token;
  $("user-id").textContent = user.id;
  $("token").textContent = user.token;
  $("identity").hidden = false;
  $("upload-step").hidden = false;
});

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
  });
  request.addEventListener("error", () => {
    $("upload-button").disabled = false;
    showError("The upload did not reach the server; check the connection and try again.");
  });
  request.send(form);
});

$("copy-button").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("link").textContent);
    $("copy-button").textContent = "Copied";
  } catch (_) {
    showError("Copying needs clipboard permission; select the link and copy it instead.");
  }
});
