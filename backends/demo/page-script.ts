/*
 * The demo page's browser script, served as `assets/demo.js`. Plain ES2020, no build step.
 * It renders only from the JSON routes and writes every value with textContent, never as
 * HTML. Requests use relative URLs and carry the page's query string, so a client without
 * cookies (the `?sessionId=` form) keeps its session too.
 */
export const PAGE_SCRIPT = String.raw`(() => {
  'use strict';
  const $ = (id) => document.getElementById(id);
  const query = location.search;
  const state = { compartments: null, node: null, order: null };

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showError(message) {
    const box = $('error');
    box.textContent = message;
    box.hidden = false;
    clearTimeout(showError.timer);
    showError.timer = setTimeout(() => { box.hidden = true; }, 4000);
  }

  async function call(method, path, body) {
    const init = { method, headers: { accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path + query, init);
    } catch (error) {
      showError('network error: ' + error.message);
      return null;
    }
    const json = await response.json().catch(() => null);
    if (!response.ok) {
      showError(json && json.message ? json.message : 'HTTP ' + response.status);
      return null;
    }
    return json;
  }

  function log(className, text) {
    const list = $('log');
    const item = el('li', className, new Date().toLocaleTimeString() + '  ' + text);
    list.prepend(item);
    while (list.children.length > 30) list.lastElementChild.remove();
  }

  function shortId(id) {
    return id ? id.slice(0, 8) + '…' : '(none)';
  }

  function renderTree(compartments) {
    const before = state.compartments;
    const paths = new Set(compartments.map((c) => c.path));
    if (before) {
      for (const c of compartments) if (!before.has(c.path)) log('entered', 'entered ' + (c.path || '(root)'));
      for (const path of before) {
        if (paths.has(path)) continue;
        const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
        // Leaving a compartment drops its children: name only the one left.
        if (parent === '' || paths.has(parent)) log('left', 'left ' + path);
      }
    }
    const tree = $('tree');
    tree.replaceChildren();
    // Depth-first, parents before children, as the node lists them.
    for (const c of compartments) {
      const depth = c.path ? c.path.split('/').length : 0;
      const name = c.path ? c.path.split('/').pop() : '(root)';
      const item = el('li', before && !before.has(c.path) ? 'fresh' : '');
      const label = el('span', '', (depth ? '\u00a0\u00a0'.repeat(depth - 1) + '└ ' : '') + name);
      item.append(label, el('span', 'bytes', c.bytes + ' B'));
      tree.append(item);
    }
    state.compartments = paths;
  }

  function renderCart(lines) {
    const list = $('cart');
    list.replaceChildren();
    if (lines.length === 0) list.append(el('li', 'empty', 'The cart is empty.'));
    for (const line of lines) {
      const item = el('li');
      const label = el('span', '', line.item);
      label.append(el('span', 'qty', '× ' + line.quantity));
      const remove = el('button', 'link', 'Remove');
      remove.type = 'button';
      remove.addEventListener('click', () => act('DELETE', 'api/cart/items/' + encodeURIComponent(line.item)));
      item.append(label, remove);
      list.append(item);
    }
    $('start-checkout').disabled = lines.length === 0;
    $('empty-cart').disabled = lines.length === 0;
  }

  function fill(form, values) {
    if (!values) return;
    for (const [key, value] of Object.entries(values)) {
      const input = form.elements.namedItem(key);
      if (input && !input.value) input.value = String(value);
    }
  }

  function renderSummary(view) {
    const summary = $('summary');
    summary.replaceChildren();
    const rows = [
      ['Items', view.cart.map((l) => l.item + ' × ' + l.quantity).join(', ')],
      ['Ship to', view.checkout.shipping ? [view.checkout.shipping.name, view.checkout.shipping.street,
        view.checkout.shipping.postcode + ' ' + view.checkout.shipping.city].join(', ') : ''],
      ['Payment', view.checkout.payment ? view.checkout.payment.method + ' (' + view.checkout.payment.holder + ')' : ''],
    ];
    for (const [term, text] of rows) summary.append(el('dt', '', term), el('dd', '', text));
  }

  function render(view) {
    if (!view) return;
    if (state.node && state.node !== view.node) {
      log('node', 'now served by ' + view.node + ' (was ' + state.node + ')');
      const badge = $('node-badge');
      badge.classList.remove('flash');
      void badge.offsetWidth;
      badge.classList.add('flash');
    }
    if (!state.node) log('', 'session loaded from ' + view.node);
    state.node = view.node;
    $('node').textContent = view.node;
    $('session').textContent = shortId(view.sessionId);
    $('version').textContent = String(view.version);
    $('count').textContent = String(view.count);
    renderCart(view.cart);
    fill($('shipping-form'), view.checkout.shipping);
    fill($('payment-form'), view.checkout.payment);
    renderSummary(view);
    renderTree(view.compartments);

    const step = state.order ? 'done' : view.checkout.step;
    const order = ['cart', 'shipping', 'payment', 'review', 'done'];
    for (const item of $('steps').children) {
      const index = order.indexOf(item.dataset.step);
      item.className = index === order.indexOf(step) ? 'current' : index < order.indexOf(step) ? 'done' : '';
    }
    for (const screen of document.querySelectorAll('[data-screen]')) screen.hidden = screen.dataset.screen !== step;
    $('cancel-checkout').hidden = step === 'cart' || step === 'done';
    if (state.order) {
      $('order-text').textContent = 'Order ' + state.order.orderId + ' placed: ' + state.order.quantity +
        ' item(s), shipping to ' + state.order.shipTo + '.';
    }
  }

  async function act(method, path, body) {
    const view = await call(method, path, body);
    if (view && view.order) state.order = view.order;
    render(view);
  }

  function formValues(form) {
    return Object.fromEntries(new FormData(form).entries());
  }

  $('increment').addEventListener('click', async () => {
    const result = await call('POST', 'api/counter');
    if (result) render(await call('GET', 'api/shop'));
  });
  $('add-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.target;
    const item = form.elements.namedItem('item').value.trim();
    const quantity = Number(form.elements.namedItem('quantity').value) || 1;
    if (!item) return;
    act('POST', 'api/cart', { item, quantity });
    form.reset();
  });
  $('presets').addEventListener('click', (event) => {
    if (event.target instanceof HTMLButtonElement) act('POST', 'api/cart', { item: event.target.textContent });
  });
  $('empty-cart').addEventListener('click', () => act('DELETE', 'api/cart'));
  $('start-checkout').addEventListener('click', () => act('POST', 'api/checkout/start'));
  $('shipping-form').addEventListener('submit', (event) => {
    event.preventDefault();
    act('POST', 'api/checkout/shipping', formValues(event.target));
  });
  $('payment-form').addEventListener('submit', (event) => {
    event.preventDefault();
    act('POST', 'api/checkout/payment', formValues(event.target));
  });
  for (const button of document.querySelectorAll('[data-back]')) {
    button.addEventListener('click', () => act('POST', 'api/checkout/back'));
  }
  $('place-order').addEventListener('click', () => act('POST', 'api/checkout/complete'));
  $('cancel-checkout').addEventListener('click', () => act('POST', 'api/checkout/leave'));
  $('continue').addEventListener('click', () => {
    state.order = null;
    for (const form of [$('shipping-form'), $('payment-form')]) form.reset();
    act('GET', 'api/shop');
  });

  function connectWebSocket() {
    const url = new URL('ws' + query, location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket = new WebSocket(url);
    socket.addEventListener('message', (event) => {
      try {
        const hello = JSON.parse(event.data);
        if (hello && hello.node) $('ws').textContent = 'on ' + hello.node;
      } catch {
        /* later messages are echoes */
      }
    });
    socket.addEventListener('close', () => {
      $('ws').textContent = 'closed, retrying';
      setTimeout(connectWebSocket, 3000);
    });
  }

  act('GET', 'api/shop').then(connectWebSocket);
})();
`;
