// The checkout page: live quote, discount code, billing account, card (Stripe.js)
// and purchase, all through checkout's JSON API with the session cookie and the
// page's CSRF token. Card numbers only ever go from Stripe.js to Stripe.
// Its mode (data-mode) is "buy" (a plan: /quotes, /purchases) or a way to grow what
// the namespace has, "add-seats", "add-duo" or "buy-packs" (/expansions/quote, /expansions).
// A saved card, when the page offers one, pays without the billing form or a new card.
(function () {
  "use strict";

  const form = document.getElementById("checkout");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const namespaceId = Number(form.dataset.namespaceId);
  const growing = form.dataset.mode !== "buy";
  const COUNT = growing ? "quantity" : "seats";  // the field for how many
  const countInput = $(COUNT);
  const PATHS = growing ? {quote: "/expansions/quote", buy: "/expansions"}
    : {quote: "/quotes", buy: "/purchases"};
  const pageData = growing ? JSON.parse($("page-data").textContent) : null;
  const codeInput = $("discount_code");
  const buyButton = $("buy");
  const BILLING = ["company", "email", "address_line1", "address_line2", "city", "state", "postal_code",
                   "country"];
  const OPTIONAL = new Set(["address_line2", "state"]);
  const NETWORK = "We could not reach checkout. Check your connection and try again.";
  // Where an API problem's message goes ("count": the seats or quantity; "card": the
  // card in use, saved or new); anything else goes next to the Buy button.
  const FIELD_OF = {
    seats_below_minimum: "count", seats_above_maximum: "count", order_too_large: "count",
    addon_seats_exceed_plan: "count", quantity_above_maximum: "count",
    card_declined: "card", payment_method_missing: "card", payment_method_not_found: "card",
    authentication_required: "card", authentication_pending: "card", setup_intent_not_found: "card",
    billing_account_missing: "company", rate_limited: "discount_code",
  };
  const savedCardChosen = () => Boolean(form.elements.payment_method)
    && form.elements.payment_method.value !== "new";
  const fieldFor = (name) => ({count: COUNT, card: savedCardChosen() ? "pay-with" : "card"}[name] || name);

  // --- the API ---------------------------------------------------------------------
  async function api(method, path, body, headers) {
    const response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: Object.assign({"Accept": "application/json", "X-CSRF-Token": csrf},
                             body === undefined ? {} : {"Content-Type": "application/json"}, headers),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch (_) { /* an empty or non-JSON body */ }
    return {status: response.status, ok: response.ok, body: data};
  }

  // --- messages next to fields -----------------------------------------------------
  function showMessage(field, message, ok) {
    const slot = $(field + "-error");
    slot.textContent = message;
    slot.classList.toggle("ok", Boolean(ok));
    const input = $(field);
    if (input && input.tagName === "INPUT") input.setAttribute("aria-invalid", message && !ok ? "true" : "false");
  }
  const showError = (field, message) => showMessage(field, message, false);
  const clearError = (field) => showMessage(field, "", false);
  const status = (message) => { $("buy-status").textContent = message; };

  function showProblem(problem, fallback) {
    const fields = problem.code === "validation_failed" && problem.errors && problem.errors.json;
    if (fields && Object.keys(fields).some((name) => $(name + "-error"))) {
      for (const [name, messages] of Object.entries(fields)) {
        showError($(name + "-error") ? name : "form", [].concat(messages).join(" "));
      }
      return;
    }
    const field = fieldFor(FIELD_OF[problem.code] || fallback);
    showError(field, problem.detail || problem.title || "Something went wrong; try again.");
  }

  // --- the quote -------------------------------------------------------------------
  let quoteSeq = 0;
  let quoteTimer = null;
  let code = null;          // the code the person applied
  let codeApplies = false;  // ... and whether the latest quote accepted it

  const money = (cents, currency) => new Intl.NumberFormat("en-US", {
    style: "currency", currency: currency.toUpperCase()}).format(cents / 100);
  const longDate = (iso) => new Intl.DateTimeFormat("en-US", {dateStyle: "long", timeZone: "UTC"})
    .format(new Date(iso + "T00:00:00Z"));

  function selection() {
    if (!growing) {
      return {namespace_id: namespaceId, plan: form.elements.plan.value, seats: Number(countInput.value)};
    }
    const product = form.querySelector('input[name="product"]:checked');
    return {namespace_id: namespaceId, kind: product.dataset.kind, sku: product.dataset.sku || null,
            quantity: Number(countInput.value)};
  }

  // What the namespace has once this is bought, in a sentence.
  function afterText(quote) {
    const after = quote.after;
    const names = pageData.names;
    if (!after) return "";
    if (quote.kind === "seats") return `Afterwards: ${after.seats} seats on ${names[after.plan] || after.plan}.`;
    if (quote.kind === "addon") {
      const held = after.addons.find((addon) => addon.sku === quote.sku);
      return `Afterwards: ${names[quote.sku] || quote.sku} for ${held ? held.seats : quote.quantity} `
        + `of ${after.seats} seats.`;
    }
    if (quote.kind === "compute_minutes") {
      return `Afterwards: ${after.compute_minutes.toLocaleString("en-US")} purchased compute minutes.`;
    }
    return `Afterwards: ${after.storage_gib} GiB of purchased storage.`;
  }

  function row(label, amount, className) {
    const tr = document.createElement("tr");
    if (className) tr.className = className;
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = label;
    const td = document.createElement("td");
    td.textContent = amount;
    tr.append(th, td);
    return tr;
  }

  function renderQuote(quote) {
    const rows = [];
    for (const line of quote.lines) {
      rows.push(row(line.description, money(line.amount, quote.currency)));
      if (line.discount) {
        rows.push(row(`Discount (${quote.discount_code})`, "-" + money(line.discount, quote.currency),
                      "discount"));
      }
    }
    $("quote-lines").replaceChildren(...rows);
    const total = document.createElement("strong");
    total.textContent = money(quote.total, quote.currency);
    $("quote-total").replaceChildren("Total today: ", total);
    $("quote-term").textContent = quote.term_end ? `${longDate(quote.term_start)} to ${longDate(quote.term_end)}`
      : "One-time purchase; never expires";
    buyButton.textContent = `Pay ${money(quote.total, quote.currency)}`;
    if (growing) {
      $("heading").textContent = quote.heading;
      document.title = `${quote.heading} — Checkout`;
      $("quote-after").textContent = afterText(quote);
    }
    const prompt = $("smb-prompt");
    if (prompt) prompt.hidden = !quote.smb_prompt || !prompt.firstElementChild;
    const result = quote.code_result;
    codeApplies = Boolean(result && result.applied);
    if (!result) clearError("discount_code");
    else if (result.applied) showMessage("discount_code", `Code ${result.code} applied.`, true);
    else showError("discount_code", result.message);
  }

  function setStale(stale) {
    $("quote-total").classList.toggle("stale", stale);
    if (stale) buyButton.textContent = "Pay";  // no amount until there is a price again
  }

  async function refreshQuote() {
    const body = Object.assign(selection(), {discount_code: code});
    const wanted = growing ? body.quantity : body.seats;
    if (!Number.isInteger(wanted) || wanted < 1) {
      showError(COUNT, growing && form.dataset.mode === "buy-packs" ? "Enter a whole number of packs."
                : "Enter a whole number of seats.");
      setStale(true);
      return;
    }
    const seq = ++quoteSeq;
    let result;
    try {
      result = await api("POST", PATHS.quote, body);
    } catch (_) {
      if (seq === quoteSeq) showError("form", NETWORK);
      return;
    }
    if (seq !== quoteSeq) return;  // a newer quote is on its way
    setStale(!result.ok);
    if (!result.ok) {
      showProblem(result.body, "count");
      return;
    }
    clearError(COUNT);
    renderQuote(result.body);
  }

  function scheduleQuote(delay) {
    clearTimeout(quoteTimer);
    quoteTimer = setTimeout(refreshQuote, delay);
  }

  function applyCode() {
    code = codeInput.value.trim() || null;
    codeApplies = false;
    clearError("discount_code");
    scheduleQuote(0);
  }

  form.addEventListener("change", (event) => {
    if (event.target.name === "plan" || event.target.name === "product") scheduleQuote(0);
    if (event.target.name === "payment_method") showCardForm(event.target.value === "new");
  });
  countInput.addEventListener("input", () => scheduleQuote(400));
  $("apply-code").addEventListener("click", applyCode);
  codeInput.addEventListener("input", () => {
    // The shown price must be what Buy charges: an edited code no longer counts.
    if (code !== null && codeInput.value.trim().toUpperCase() !== code.toUpperCase()) {
      code = null;
      codeApplies = false;
      clearError("discount_code");
      scheduleQuote(400);
    }
  });
  for (const [input, action] of [[countInput, refreshQuote], [codeInput, applyCode]]) {
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {  // Enter here prices; only the Buy button buys
        event.preventDefault();
        clearTimeout(quoteTimer);
        action();
      }
    });
  }
  const promptButton = document.querySelector("#smb-prompt button[data-code]");
  if (promptButton) {
    promptButton.addEventListener("click", () => {
      codeInput.value = promptButton.dataset.code;
      applyCode();
      codeInput.focus();
    });
  }

  // --- the card: the saved one, or a new one (Stripe.js) ----------------------------
  function showCardForm(show) {
    form.querySelector(".billing").hidden = !show;
    form.querySelector(".card-details").hidden = !show;
    clearError("pay-with");
    clearError("card");
  }

  let stripe = null;
  let card = null;
  let cardTouched = false;
  let savedCardId = null;  // the card this page saved, until the person changes it
  if (typeof Stripe === "function") {
    stripe = Stripe(form.dataset.publishableKey);
    card = stripe.elements().create("card");
    card.mount("#card-element");
    card.on("change", () => {
      cardTouched = true;
      savedCardId = null;
      clearError("card");
    });
  } else {
    showError("card", "The card form could not load. Check your connection and reload the page.");
  }

  async function captureCard() {
    if (!stripe) return null;
    if (!cardTouched) {
      showError("card", "Enter your card details.");
      return null;
    }
    const setup = await api("POST", "/billing-account/card-setup");
    if (!setup.ok) {
      showProblem(setup.body, "card");
      return null;
    }
    const confirmed = await stripe.confirmCardSetup(setup.body.client_secret, {payment_method: {card}});
    if (confirmed.error && confirmed.error.type === "validation_error") {
      showError("card", confirmed.error.message);
      return null;
    }
    // Declined or not, the server reads the outcome from Stripe (and records a decline).
    // The card typed at checkout pays for this purchase and its renewals: it becomes the default.
    const recorded = await api("POST", "/billing-account/cards",
                               {setup_intent_id: setup.body.setup_intent_id, make_default: true});
    if (recorded.status === 201) return recorded.body.id;
    const reason = confirmed.error && confirmed.error.message;
    showError("card", reason || recorded.body.detail || "Your card could not be saved; try another card.");
    return null;
  }

  // --- billing account -------------------------------------------------------------
  async function saveAccount() {
    const body = {};
    let missing = false;
    for (const name of BILLING) {
      const value = form.elements[name].value.trim();
      body[name] = value === "" && OPTIONAL.has(name) ? null : value;
      if (value === "" && !OPTIONAL.has(name)) {
        const label = document.querySelector(`label[for="${name}"]`).textContent.replace(/\s*\(.*\)$/, "");
        showError(name, `Enter the ${label.toLowerCase()}.`);
        missing = true;
      } else {
        clearError(name);
      }
    }
    if (missing) return false;
    const saved = await api("PUT", "/billing-account", body);
    if (!saved.ok) showProblem(saved.body, "form");
    return saved.ok;
  }

  // --- buying ----------------------------------------------------------------------
  // One Idempotency-Key per attempt: kept for a retry of the same purchase (a lost
  // answer, a 5xx), so retrying never buys twice; a new one once the server answered.
  let attempt = null;

  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function finish(orderId) {
    status("Done. Opening your order…");
    window.location.assign(`/checkout/orders/${orderId}`);
    return true;
  }

  async function authenticate(outcome) {
    const orderId = outcome.order.id;
    if (!outcome.client_secret) return finish(orderId);  // already being confirmed
    status("Your bank asks you to confirm this payment…");
    // Whatever the person answers, the server reads the result back from Stripe.
    await stripe.confirmCardPayment(outcome.client_secret);
    const confirmed = await api("POST", `/orders/${orderId}/confirm`);
    attempt = null;
    if (confirmed.status === 201) return finish(orderId);
    showProblem(confirmed.body, "card");
    return false;
  }

  async function purchase(cardId) {
    const body = Object.assign(selection(), {discount_code: codeApplies ? code : null,
                                             payment_method_id: cardId});
    const fingerprint = JSON.stringify(body);
    if (!attempt || attempt.fingerprint !== fingerprint) attempt = {fingerprint, key: newKey()};
    let result;
    try {
      result = await api("POST", PATHS.buy, body, {"Idempotency-Key": attempt.key});
    } catch (_) {
      showError("form", "We could not reach checkout, so we do not know yet whether this went through. "
                + "Press Pay again: it finishes this same purchase and never charges twice.");
      return false;
    }
    if (result.status === 201) return finish(result.body.order.id);
    if (result.status === 202) return authenticate(result.body);
    if (result.status < 500 && result.body.code !== "idempotency_key_in_use") attempt = null;
    showProblem(result.body, "form");
    // A code that applied when priced may not any more (used up, ended): the new quote
    // says why next to the code, in the server's words (code_result.message), and shows
    // the price Buy now charges.
    if (result.status === 422 && body.discount_code) scheduleQuote(0);
    return false;
  }

  async function buy() {
    if (savedCardChosen()) {
      status("Paying…");
      return purchase(Number(form.elements.payment_method.value));
    }
    status("Saving your billing details…");
    if (!(await saveAccount())) return false;
    if (savedCardId === null) {
      status("Checking your card…");
      savedCardId = await captureCard();
      if (savedCardId === null) return false;
    }
    status("Paying…");
    return purchase(savedCardId);
  }

  if (growing) renderQuote(pageData.quote);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (buyButton.disabled) return;  // one purchase in flight at a time
    buyButton.disabled = true;
    form.setAttribute("aria-busy", "true");
    clearError("form");
    let leaving = false;
    try {
      leaving = await buy();
    } catch (_) {
      showError("form", NETWORK);
    } finally {
      form.removeAttribute("aria-busy");
      if (!leaving) {
        status("");
        buyButton.disabled = false;
      }
    }
  });
})();
