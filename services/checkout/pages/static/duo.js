// The Duo seat page: Owners select members and assign or remove their seats in
// one request (at most data-max at a time, all or nothing) through checkout's
// JSON API with the session cookie and the page's CSRF token.
(function () {
  "use strict";

  const form = document.getElementById("duo");
  if (!form) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const status = document.getElementById("duo-status");
  const boxes = () => Array.from(form.querySelectorAll('input[name="user"]'));
  const base = `/namespaces/${form.dataset.namespaceId}/duo/${form.dataset.sku}`;

  document.getElementById("select-all").addEventListener("change", (event) => {
    for (const box of boxes()) box.checked = event.target.checked;
  });

  async function send(action) {
    const ids = boxes().filter((box) => box.checked).map((box) => Number(box.value));
    if (ids.length === 0) { status.textContent = "Select members first."; return; }
    if (ids.length > Number(form.dataset.max)) {
      status.textContent = `At most ${form.dataset.max} members at a time.`;
      return;
    }
    status.textContent = "Saving…";
    let response, body = {};
    try {
      response = await fetch(`${base}/${action}`, {
        method: "POST", credentials: "same-origin",
        headers: {"Accept": "application/json", "Content-Type": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify({user_ids: ids}),
      });
      body = await response.json();
    } catch (_) {
      status.textContent = "We could not reach checkout. Check your connection and try again.";
      return;
    }
    if (!response.ok) {
      status.textContent = body.detail || body.title || "That did not work.";
      return;
    }
    window.location.reload();
  }

  document.getElementById("assign").addEventListener("click", () => send("assign"));
  document.getElementById("unassign").addEventListener("click", () => send("unassign"));
})();
