// Progressive enhancement only: every page works without this file.
"use strict";

// Follow a test job until it reaches a final state, updating the live region.
function followTest(box) {
  const url = box.dataset.stateUrl;
  const badge = box.querySelector(".test-state");
  const detail = box.querySelector(".test-detail");
  let polls = 0;
  async function poll() {
    polls += 1;
    let state;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) { throw new Error(String(response.status)); }
      state = await response.json();
    } catch (error) {
      detail.textContent = "(could not check the outcome; reload the page)";
      return;
    }
    badge.innerHTML = "";
    const span = document.createElement("span");
    span.className = "badge state-" + state.state;
    span.textContent = state.state;
    badge.appendChild(span);
    box.dataset.state = state.state;
    const parts = [];
    if (state.status_code) { parts.push("status " + state.status_code); }
    if (state.reason) { parts.push(state.reason); }
    if (state.error) { parts.push(state.error); }
    if (state.updated_at) { parts.push(state.updated_at); }
    detail.textContent = parts.length ? "(" + parts.join(", ") + ")" : "";
    // Slow down after the first half minute; a dead job needs no more polling.
    if (!state.final && polls < 300) { setTimeout(poll, polls < 30 ? 1000 : 5000); }
  }
  poll();
}

// Reload a job's page once the job changed (a retry recorded, an attempt made).
function reloadOnChange(note) {
  let polls = 0;
  async function poll() {
    polls += 1;
    try {
      const response = await fetch(note.dataset.followUrl, { credentials: "same-origin" });
      const state = response.ok ? await response.json() : null;
      if (state && state.recorded && state.updated_at !== note.dataset.updated) {
        window.location.replace(window.location.pathname);
        return;
      }
    } catch (error) {
      return;
    }
    if (polls < 120) { setTimeout(poll, polls < 30 ? 1000 : 5000); }
  }
  setTimeout(poll, 1000);
}

// Move focus to the first field the API complained about, or the problem list.
function focusFirstProblem() {
  const invalid = document.querySelector("[aria-invalid='true']");
  const target = invalid || document.getElementById("problems");
  if (target) { target.focus(); }
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-state-url]").forEach(followTest);
  document.querySelectorAll("[data-follow-url]").forEach(reloadOnChange);
  focusFirstProblem();
});
