// The seats page's preview: what adding these members with this role would cost,
// asked of checkout's JSON API (POST /namespaces/{id}/seats/preview) before anyone is added.
(function () {
  "use strict";

  const form = document.getElementById("seat-preview");
  if (!form) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const warning = document.getElementById("seat-warning");
  const money = (cents) => new Intl.NumberFormat("en-US", {style: "currency",
    currency: form.dataset.currency.toUpperCase()}).format(cents / 100);
  const day = (iso) => new Date(iso + "T00:00:00Z").toLocaleDateString("en-US",
    {year: "numeric", month: "long", day: "numeric", timeZone: "UTC"});

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ids = document.getElementById("user_ids").value.split(",").map((s) => Number(s.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
    let response, body = {};
    try {
      response = await fetch(`/namespaces/${form.dataset.namespaceId}/seats/preview`, {
        method: "POST", credentials: "same-origin",
        headers: {"Accept": "application/json", "Content-Type": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify({user_ids: ids, role: document.getElementById("role").value}),
      });
      body = await response.json();
    } catch (_) {
      warning.textContent = "We could not reach checkout. Check your connection and try again.";
      return;
    }
    if (!response.ok) { warning.textContent = body.detail || body.title || "That did not work."; return; }
    warning.classList.toggle("error", body.will_increase_overage);
    if (!body.will_increase_overage) {
      warning.textContent = body.new_seats
        ? `No extra charge: ${body.new_seats} of your paid seats would be used.`
        : "No extra charge: these members take no seat.";
    } else if (body.amount > 0) {
      warning.textContent = `Adding them uses ${body.additional_seats_owed} more seats than you bought: ` +
        `${money(body.amount)} will be charged after the reconciliation on ${day(body.reconciliation_date)}.`;
    } else {
      warning.textContent = `Adding them uses ${body.additional_seats_owed} more seats than you bought: ` +
        "the renewal will count them.";
    }
  });
})();
