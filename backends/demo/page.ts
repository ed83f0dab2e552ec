/*
 * The demo page: one HTML document with inline CSS, and its script served from
 * `assets/demo.js` (so the Content-Security-Policy can forbid inline script). Every URL is
 * relative, so the page works unchanged behind the proxy. The page renders from the JSON
 * routes only; it reads the session through them, never through the HTML.
 */

/** Content-Security-Policy of the page: own script only, no framing, no foreign connections. */
export const PAGE_CSP =
  "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

const STYLE = `
:root { --bg: #f4f5f7; --card: #fff; --ink: #1d2330; --muted: #667085; --line: #e3e6eb;
  --accent: #3056d3; --accent-ink: #fff; --good: #14804a; --bad: #c0362c; --fresh: #e7f6ec; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  background: var(--bg); color: var(--ink); }
header { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; justify-content: space-between;
  padding: 14px 28px; background: #1d2330; color: #fff; }
header h1 { margin: 0; font-size: 18px; font-weight: 600; letter-spacing: .2px; }
header h1 span { color: #9fb3ff; }
.badges { display: flex; flex-wrap: wrap; gap: 8px; }
.badge { padding: 4px 10px; border-radius: 999px; background: #2d3546; font-size: 13px; }
.badge b, .badge code { color: #fff; }
.badge.flash { animation: flash 1.6s ease-out; }
@keyframes flash { from { background: #f5b83d; color: #1d2330; } to { background: #2d3546; } }
main { display: grid; gap: 18px; padding: 22px 28px; max-width: 1320px; margin: 0 auto;
  grid-template-columns: minmax(200px, 1fr) minmax(380px, 2fr) minmax(260px, 1.2fr); align-items: start; }
@media (max-width: 980px) { main { grid-template-columns: 1fr; } }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px;
  box-shadow: 0 1px 2px rgba(16, 24, 40, .05); }
.card h2 { margin: 0 0 12px; font-size: 15px; text-transform: uppercase; letter-spacing: .6px; color: var(--muted); }
.card h3 { margin: 16px 0 6px; font-size: 13px; color: var(--muted); }
.hint { color: var(--muted); font-size: 13px; margin: 10px 0 0; }
.counter { display: flex; align-items: center; gap: 16px; }
.counter output { font-size: 44px; font-weight: 700; min-width: 2ch; font-variant-numeric: tabular-nums; }
button { font: inherit; border: 1px solid var(--line); background: #fff; color: var(--ink); border-radius: 7px;
  padding: 6px 12px; cursor: pointer; }
button:hover { border-color: #b8c0cc; }
button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-ink); }
button.round { width: 44px; height: 44px; border-radius: 50%; font-size: 22px; padding: 0; }
button.link { border: none; background: none; color: var(--bad); padding: 2px 6px; }
button:disabled { opacity: .5; cursor: default; }
.steps { display: flex; gap: 6px; padding: 0; margin: 0 0 16px; list-style: none; counter-reset: step; }
.steps li { flex: 1; text-align: center; font-size: 13px; padding: 6px 4px; border-radius: 6px;
  background: #eef0f4; color: var(--muted); }
.steps li.done { background: #dfe7ff; color: var(--accent); }
.steps li.current { background: var(--accent); color: #fff; font-weight: 600; }
.screen[hidden] { display: none; }
form.row { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 10px; }
input, select { font: inherit; padding: 6px 9px; border: 1px solid var(--line); border-radius: 7px; min-width: 0; }
form.row input[name=item] { flex: 1; }
.presets { display: flex; gap: 6px; flex-wrap: wrap; margin-bottom: 12px; }
.presets button { font-size: 13px; padding: 3px 10px; border-radius: 999px; }
ul.lines { list-style: none; padding: 0; margin: 0 0 12px; border-top: 1px solid var(--line); }
ul.lines li { display: flex; justify-content: space-between; align-items: center; padding: 7px 2px;
  border-bottom: 1px solid var(--line); }
ul.lines .qty { color: var(--muted); margin-left: 8px; font-variant-numeric: tabular-nums; }
.empty { color: var(--muted); font-style: italic; }
.fields { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; margin-bottom: 12px; }
.fields label { display: flex; flex-direction: column; gap: 4px; font-size: 13px; color: var(--muted); }
.fields label.full { grid-column: 1 / -1; }
.actions { display: flex; justify-content: space-between; gap: 8px; margin-top: 10px; }
dl.summary { display: grid; grid-template-columns: max-content 1fr; gap: 4px 14px; margin: 0 0 14px; }
dl.summary dt { color: var(--muted); }
dl.summary dd { margin: 0; }
ul.tree { list-style: none; margin: 0; padding: 0; font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; }
ul.tree li { display: flex; justify-content: space-between; padding: 4px 6px; border-radius: 5px; }
ul.tree li .bytes { color: var(--muted); }
ul.tree li.fresh { animation: fresh 2s ease-out; }
@keyframes fresh { from { background: #bfe8cc; } to { background: transparent; } }
ol.log { list-style: none; margin: 0; padding: 0; font-size: 13px; max-height: 190px; overflow: auto; }
ol.log li { padding: 3px 0; border-bottom: 1px dashed var(--line); }
ol.log .entered { color: var(--good); }
ol.log .left { color: var(--bad); }
ol.log .node { color: #a15c00; }
#error { position: fixed; bottom: 18px; left: 50%; transform: translateX(-50%); margin: 0; padding: 10px 16px;
  background: var(--bad); color: #fff; border-radius: 8px; box-shadow: 0 4px 14px rgba(0, 0, 0, .2); }
footer { text-align: center; color: var(--muted); font-size: 12px; padding: 0 0 24px; }
`;

/** The page's HTML; built once per node, since only the node id varies. */
export function renderPage(nodeId: string): string {
  const node = escapeHtml(nodeId);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stickylb demo · ${node}</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>stickylb <span>demo</span></h1>
  <div class="badges">
    <span class="badge" id="node-badge">node <b id="node">${node}</b></span>
    <span class="badge">session <code id="session">…</code></span>
    <span class="badge">version <b id="version">–</b></span>
    <span class="badge">websocket <b id="ws">connecting</b></span>
  </div>
</header>
<main>
  <section class="card">
    <h2>Counter</h2>
    <div class="counter">
      <output id="count">0</output>
      <button class="round primary" id="increment" type="button" aria-label="Increment">+</button>
    </div>
    <p class="hint">Kept in the session's root compartment. Stop this node: the next click lands on another
      node and the count carries on.</p>
  </section>

  <section class="card">
    <h2>Shop</h2>
    <ol class="steps" id="steps">
      <li data-step="cart">Cart</li><li data-step="shipping">Shipping</li><li data-step="payment">Payment</li>
      <li data-step="review">Review</li><li data-step="done">Done</li>
    </ol>

    <div class="screen" data-screen="cart">
      <form class="row" id="add-form">
        <input name="item" placeholder="Add an item…" maxlength="60" required autocomplete="off">
        <input name="quantity" type="number" min="1" max="99" value="1" style="width: 5em" aria-label="Quantity">
        <button class="primary" type="submit">Add</button>
      </form>
      <div class="presets" id="presets">
        <button type="button">Coffee beans</button><button type="button">Croissant</button>
        <button type="button">Green tea</button><button type="button">Sourdough</button>
      </div>
      <ul class="lines" id="cart"></ul>
      <div class="actions">
        <button type="button" id="empty-cart">Empty cart</button>
        <button type="button" class="primary" id="start-checkout">Checkout →</button>
      </div>
    </div>

    <form class="screen" data-screen="shipping" id="shipping-form" hidden>
      <div class="fields">
        <label class="full">Name <input name="name" maxlength="80" required autocomplete="name"></label>
        <label class="full">Street <input name="street" maxlength="120" required autocomplete="street-address"></label>
        <label>City <input name="city" maxlength="80" required autocomplete="address-level2"></label>
        <label>Postcode <input name="postcode" maxlength="16" required autocomplete="postal-code"></label>
      </div>
      <div class="actions"><button type="button" data-back>← Back</button>
        <button class="primary" type="submit">Continue →</button></div>
    </form>

    <form class="screen" data-screen="payment" id="payment-form" hidden>
      <div class="fields">
        <label>Method <select name="method"><option value="card">Card</option>
          <option value="invoice">Invoice</option></select></label>
        <label>Holder <input name="holder" maxlength="80" required autocomplete="cc-name"></label>
      </div>
      <p class="hint">A demo: no card number is asked for or stored.</p>
      <div class="actions"><button type="button" data-back>← Back</button>
        <button class="primary" type="submit">Continue →</button></div>
    </form>

    <div class="screen" data-screen="review" hidden>
      <dl class="summary" id="summary"></dl>
      <div class="actions"><button type="button" data-back>← Back</button>
        <button class="primary" type="button" id="place-order">Place order</button></div>
    </div>

    <div class="screen" data-screen="done" hidden>
      <p id="order-text"></p>
      <p class="hint">The cart and checkout compartments were left: their data is gone from the session.</p>
      <div class="actions"><span></span><button class="primary" type="button" id="continue">Continue shopping</button></div>
    </div>
    <p class="hint"><button type="button" class="link" id="cancel-checkout" hidden>Cancel checkout</button></p>
  </section>

  <section class="card">
    <h2>Session compartments</h2>
    <ul class="tree" id="tree"></ul>
    <h3>Activity</h3>
    <ol class="log" id="log"></ol>
  </section>
</main>
<p id="error" role="alert" hidden></p>
<footer>Served by <b>${node}</b> through stickylb · sticky sessions with failover</footer>
<script src="assets/demo.js" defer></script>
</body>
</html>
`;
}
