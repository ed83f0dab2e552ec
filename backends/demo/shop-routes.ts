import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { BadRequestError, NotFoundError } from '../../src/errors.js';
import {
  enterCompartment,
  findCompartment,
  leaveCompartment,
  setValue,
  type CompartmentData,
  type JsonValue,
} from '../../src/session/index.js';
import {
  buildShopView,
  CART,
  CHECKOUT,
  checkoutStepOf,
  LAST_ORDER_KEY,
  PAYMENT,
  readCart,
  SHIPPING,
  type CartLine,
} from './shop-view.js';

/** Bounds that keep one session's cart small (session data lives in every node's memory). */
const MAX_CART_LINES = 20;
const MAX_QUANTITY = 99;

/** A non-blank string of at most `maxLength` characters. */
const text = (maxLength: number) => ({ type: 'string', minLength: 1, maxLength, pattern: '\\S' }) as const;

const addItemSchema = {
  body: {
    type: 'object',
    required: ['item'],
    additionalProperties: false,
    properties: {
      item: text(60),
      quantity: { type: 'integer', minimum: 1, maximum: MAX_QUANTITY, default: 1 },
    },
  },
} as const;

const removeItemSchema = {
  params: { type: 'object', required: ['item'], properties: { item: text(60) } },
} as const;

const shippingSchema = {
  body: {
    type: 'object',
    required: ['name', 'street', 'city', 'postcode'],
    additionalProperties: false,
    properties: { name: text(80), street: text(120), city: text(80), postcode: text(16) },
  },
} as const;

const paymentSchema = {
  body: {
    type: 'object',
    required: ['method', 'holder'],
    additionalProperties: false,
    properties: { method: { type: 'string', enum: ['card', 'invoice'] }, holder: text(80) },
  },
} as const;

interface AddItemBody {
  item: string;
  quantity: number;
}
type ShippingBody = Record<'name' | 'street' | 'city' | 'postcode', string>;
type PaymentBody = Record<'method' | 'holder', string>;

function requireCart(data: CompartmentData): CartLine[] {
  const lines = readCart(data);
  if (lines.length === 0) throw new BadRequestError('the cart is empty');
  return lines;
}

function writeFields(data: CompartmentData, path: string, fields: Record<string, JsonValue>): void {
  enterCompartment(data, path);
  for (const [key, value] of Object.entries(fields)) setValue(data, path, key, value);
}

/**
 * The shop of the demo page: a cart and a checkout of three screens (shipping → payment →
 * review). Each write runs as one atomic session update; a rejected one changes nothing.
 * Every route answers the page's whole view (`ShopView`), so the page renders from one reply.
 */
export const shopRoutes: FastifyPluginAsync<{ nodeId: string }> = async (app, { nodeId }) => {
  app.get('/api/shop', async (request) => buildShopView(request.session, nodeId));

  app.post<{ Body: AddItemBody }>('/api/cart', { schema: addItemSchema }, async (request) => {
    const item = request.body.item.trim();
    // Removed by URL (`DELETE /api/cart/items/:item`), where a URL parser resolves these away.
    if (item === '.' || item === '..') throw new BadRequestError('an item cannot be named "." or ".."');
    const { quantity } = request.body;
    await request.session.update((data) => {
      const lines = readCart(data);
      const line = lines.find((candidate) => candidate.item === item);
      if (line) {
        line.quantity = Math.min(line.quantity + quantity, MAX_QUANTITY);
      } else {
        if (lines.length >= MAX_CART_LINES)
          throw new BadRequestError(`a cart holds at most ${MAX_CART_LINES} items`);
        lines.push({ item, quantity });
      }
      enterCompartment(data, CART);
      setValue(data, CART, 'items', lines);
    });
    return buildShopView(request.session, nodeId);
  });

  app.delete<{ Params: { item: string } }>(
    '/api/cart/items/:item',
    { schema: removeItemSchema },
    async (request) => {
      const { item } = request.params;
      await request.session.update((data) => {
        const lines = readCart(data);
        const remaining = lines.filter((line) => line.item !== item);
        if (remaining.length === lines.length)
          throw new NotFoundError(`item ${JSON.stringify(item)} is not in the cart`);
        if (remaining.length > 0) {
          setValue(data, CART, 'items', remaining);
          return;
        }
        // An empty cart is no cart, and no checkout either.
        leaveCompartment(data, CART);
        leaveCompartment(data, CHECKOUT);
      });
      return buildShopView(request.session, nodeId);
    },
  );

  app.delete('/api/cart', async (request) => {
    await request.session.update((data) => {
      leaveCompartment(data, CART);
      leaveCompartment(data, CHECKOUT);
    });
    return buildShopView(request.session, nodeId);
  });

  app.post('/api/checkout/start', async (request) => {
    await request.session.update((data) => {
      requireCart(data);
      if (checkoutStepOf(data) === 'cart') enterCompartment(data, SHIPPING);
    });
    return buildShopView(request.session, nodeId);
  });

  app.post<{ Body: ShippingBody }>('/api/checkout/shipping', { schema: shippingSchema }, async (request) => {
    await request.session.update((data) => {
      requireCart(data);
      writeFields(data, SHIPPING, request.body);
      enterCompartment(data, PAYMENT);
    });
    return buildShopView(request.session, nodeId);
  });

  app.post<{ Body: PaymentBody }>('/api/checkout/payment', { schema: paymentSchema }, async (request) => {
    await request.session.update((data) => {
      requireCart(data);
      if (checkoutStepOf(data) !== 'payment' && checkoutStepOf(data) !== 'review') {
        throw new BadRequestError('complete the shipping step first');
      }
      writeFields(data, PAYMENT, request.body);
    });
    return buildShopView(request.session, nodeId);
  });

  app.post('/api/checkout/back', async (request) => {
    await request.session.update((data) => {
      switch (checkoutStepOf(data)) {
        case 'review': // back to an empty payment form
          leaveCompartment(data, PAYMENT);
          enterCompartment(data, PAYMENT);
          break;
        case 'payment':
          leaveCompartment(data, PAYMENT);
          break;
        case 'shipping':
          leaveCompartment(data, CHECKOUT);
          break;
        case 'cart':
          break;
      }
    });
    return buildShopView(request.session, nodeId);
  });

  app.post('/api/checkout/leave', async (request) => {
    await request.session.update((data) => {
      leaveCompartment(data, CHECKOUT);
    });
    return buildShopView(request.session, nodeId);
  });

  app.post('/api/checkout/complete', async (request) => {
    const order = await request.session.update((data) => {
      const lines = requireCart(data);
      if (checkoutStepOf(data) !== 'review')
        throw new BadRequestError('complete the shipping and payment steps first');
      const view = buildOrder(data, lines);
      setValue(data, '', LAST_ORDER_KEY, view);
      // The order is placed: the screens that led to it are left, and their data with them.
      leaveCompartment(data, CHECKOUT);
      leaveCompartment(data, CART);
      return view;
    });
    return { ...buildShopView(request.session, nodeId), order };
  });
};

function buildOrder(data: CompartmentData, lines: CartLine[]): Record<string, JsonValue> {
  const shipping = findValues(data, SHIPPING);
  const payment = findValues(data, PAYMENT);
  return {
    orderId: randomBytes(4).toString('hex'),
    items: lines,
    quantity: lines.reduce((sum, line) => sum + line.quantity, 0),
    shipTo: `${String(shipping.name)}, ${String(shipping.city)}`,
    paidBy: String(payment.method),
    placedAt: new Date().toISOString(),
  };
}

function findValues(data: CompartmentData, path: string): Record<string, JsonValue> {
  return findCompartment(data, path)?.values ?? {};
}
