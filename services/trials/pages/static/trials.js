// The trials page: start a trial through the trials API with the session cookie
// and the page's CSRF token, then show its days left and end date, the link to buy
// what it gives (and the Duo Pro offer when the start answer carries one).
(function () {
  "use strict";

  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const longDate = (iso) => new Intl.DateTimeFormat("en-US", {dateStyle: "long", timeZone: "UTC"})
    .format(new Date(iso));

  function paragraph(text, className) {
    const p = document.createElement("p");
    p.textContent = text;
    if (className) p.className = className;
    return p;
  }

  function showActive(section, trial) {
    const box = section.querySelector(`.trial[data-kind="${trial.kind}"]`);
    if (!box) return;
    const days = `${trial.days_left} day${trial.days_left === 1 ? "" : "s"} left`;
    box.querySelector(".state").replaceChildren(
      paragraph(`Active: ${days}, ends ${longDate(trial.ends_at)}.`, "active"));
    box.querySelector(".buy-link").hidden = false;  // keep it: buy before the trial ends
  }

  function showUpsell(section, upsell) {
    const aside = section.querySelector(".upsell");
    const heading = document.createElement("h3");
    heading.textContent = `Also try ${upsell.name}`;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.dataset.start = upsell.kind;
    button.textContent = `Start the ${upsell.name} trial`;
    aside.replaceChildren(heading, paragraph(upsell.message), button);
    aside.hidden = false;
  }

  async function start(button) {
    const section = button.closest("section[data-namespace-id]");
    const kind = button.dataset.start;
    const box = section.querySelector(`.trial[data-kind="${kind}"]`);
    const error = box.querySelector(".error");
    button.disabled = true;
    error.textContent = "";
    let response;
    let body = {};
    try {
      response = await fetch(`/namespaces/${section.dataset.namespaceId}/trials`, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify({kind}),
      });
      body = await response.json();
    } catch (_) {
      error.textContent = "We could not reach the trials service. Check your connection and try again.";
      button.disabled = false;
      return;
    }
    if (!response.ok) {
      error.textContent = body.detail || body.title || "The trial could not be started.";
      button.disabled = false;
      return;
    }
    showActive(section, body);
    if (kind !== "ultimate") section.querySelector(".upsell").hidden = true;
    if (body.upsell) showUpsell(section, body.upsell);
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-start]");
    if (button && !button.disabled) start(button);
  });
})();
