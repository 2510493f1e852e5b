// The Billing page: each action calls checkout's JSON API (session cookie and the
// page's CSRF token), then the page reloads to show the new state as the server
// renders it. Card numbers only ever go from Stripe.js to Stripe.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const printButton = $("print");
  if (printButton) printButton.addEventListener("click", () => window.print());
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const NETWORK = "We could not reach checkout. Check your connection and try again.";

  async function api(method, path, body) {
    let response;
    try {
      response = await fetch(path, {
        method, credentials: "same-origin",
        headers: Object.assign({"Accept": "application/json", "X-CSRF-Token": csrf},
                               body === undefined ? {} : {"Content-Type": "application/json"}),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      return {ok: false, status: 0, body: {detail: NETWORK}};
    }
    let data = {};
    try { data = await response.json(); } catch (_) { /* 204, or not JSON */ }
    return {ok: response.ok, status: response.status, body: data};
  }

  const say = (slot, message) => { $(slot).textContent = message || ""; };
  function problem(answer) {
    const fields = answer.body.errors && answer.body.errors.json;  // validation_failed: say which field
    if (fields) return Object.values(fields).map((m) => [].concat(m).join(" ")).join(" ");
    return answer.body.detail || answer.body.title || "Something went wrong; try again.";
  }

  // Do `action`; on success reload with `done` shown, else show the problem in `slot`.
  function wire(button, slot, action, done) {
    if (!button) return;
    button.addEventListener("click", async (event) => {
      event.preventDefault();
      button.disabled = true;
      const answer = await action(button);
      if (answer.ok) {
        sessionStorage.setItem("billing-status", done);
        window.location.reload();
        return;
      }
      say(slot, problem(answer));
      button.disabled = false;
    });
  }

  // --- an invitation to manage billing ----------------------------------------------------
  const invitation = $("invitation");
  const accept = $("accept");
  if (invitation && accept) {
    accept.addEventListener("click", async () => {
      accept.disabled = true;
      const answer = await api("POST", "/billing-invitations/accept", {token: invitation.dataset.token});
      if (answer.ok) {
        sessionStorage.setItem("billing-status", "You manage billing for this namespace now.");
        window.location.assign("/billing/" + answer.body.namespace_id);
        return;
      }
      say("accept-error", problem(answer));
      accept.disabled = false;
    });
  }

  const root = $("billing");
  if (!root) return;
  const base = "/namespaces/" + root.dataset.namespaceId;

  const status = sessionStorage.getItem("billing-status");
  if (status) {
    say("page-status", status);
    sessionStorage.removeItem("billing-status");
  }

  // --- renewal ----------------------------------------------------------------------
  wire($("renew-now"), "renewal-error", (b) => {
    if (!window.confirm("Renew now for " + b.dataset.amount + "? The default card is charged today.")) {
      return Promise.resolve({ok: false, body: {detail: "Not renewed."}});
    }
    return api("POST", base + "/subscription/renewal");
  }, "Renewed. Thank you!");
  wire($("auto-renew-on"), "renewal-error",
       () => api("PUT", base + "/subscription/auto-renew", {enabled: true}),
       "Automatic renewal is on again. We sent a confirmation by mail.");

  // --- changes at the next renewal -------------------------------------------------------
  wire($("schedule-change-button"), "change-error", () => {
    const seats = Number($("change-seats").value);
    const plan = $("change-plan") ? $("change-plan").value : "";
    const drop = Array.from(document.querySelectorAll(".drop-addon:checked")).map((box) => box.value);
    return api("PUT", base + "/subscription/scheduled-change",
               {seats: Number.isInteger(seats) && seats > 0 ? seats : null, plan: plan || null, drop_addons: drop});
  }, "The change is scheduled for the renewal.");
  wire($("cancel-change"), "renewal-error", () => api("DELETE", base + "/subscription/scheduled-change"),
       "The scheduled change was canceled.");

  const start = $("auto-renew-off-start");
  const offForm = $("auto-renew-off");
  if (start && offForm) {
    start.addEventListener("click", async () => {
      offForm.hidden = false;
      start.hidden = true;
      // The cancel flow's save offer: shown only when its experiment gives one.
      const answer = await api("GET", base + "/subscription/save-offer");
      const offer = answer.ok && answer.body.offer;
      if (offer && offer.message) {
        $("save-offer").textContent = offer.message;
        $("save-offer").hidden = false;
      }
      const first = offForm.querySelector('input[name="reason"]');
      if (first) first.focus();
    });
    wire($("auto-renew-off-confirm"), "reason-error", () => {
      const picked = offForm.querySelector('input[name="reason"]:checked');
      if (!picked) return Promise.resolve({ok: false, body: {detail: "Choose a reason."}});
      return api("PUT", base + "/subscription/auto-renew",
                 {enabled: false, reason: picked.value, comment: $("reason-comment").value || null});
    }, "Automatic renewal is off. We sent a confirmation by mail.");
  }

  // --- cards --------------------------------------------------------------------------
  document.querySelectorAll(".saved-card").forEach((item) => {
    const id = item.dataset.cardId;
    wire(item.querySelector(".make-default"), "cards-error",
         () => api("PUT", base + "/billing/cards/" + id + "/default"), "The default card changed.");
    wire(item.querySelector(".remove-card"), "cards-error",
         () => api("DELETE", base + "/billing/cards/" + id), "The card was removed.");
  });

  // --- billing managers ------------------------------------------------------------------
  wire($("invite-button"), "invite-error",
       () => api("POST", base + "/billing/managers/invitations", {email: $("invite-email").value}),
       "Invitation sent.");
  document.querySelectorAll("[data-user-id]").forEach((item) => {
    wire(item.querySelector(".remove-manager"), "managers-error",
         () => api("DELETE", base + "/billing/managers/" + item.dataset.userId), "The billing manager was removed.");
  });

  const addForm = $("add-card");
  if (!addForm) return;
  let stripe = null;
  let card = null;
  if (typeof Stripe === "function") {
    stripe = Stripe(root.dataset.publishableKey);
    card = stripe.elements().create("card");
    card.mount("#card-element");
    card.on("change", () => say("card-error", ""));
  } else {
    say("card-error", "The card form could not load. Check your connection and reload the page.");
  }
  wire($("add-card-button"), "card-error", async () => {
    if (!stripe) return {ok: false, body: {detail: "The card form could not load; reload the page."}};
    const setup = await api("POST", base + "/billing/card-setup");
    if (!setup.ok) return setup;
    const confirmed = await stripe.confirmCardSetup(setup.body.client_secret, {payment_method: {card}});
    const recorded = await api("POST", base + "/billing/cards",
                               {setup_intent_id: setup.body.setup_intent_id,
                                make_default: $("make-default").checked});
    if (!recorded.ok && confirmed.error && confirmed.error.message) {
      return {ok: false, body: {detail: confirmed.error.message}};
    }
    return recorded;
  }, "The card was added.");
})();
