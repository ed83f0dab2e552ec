import type { SessionHandle } from '../../src/plugin/index.js';
import {
  compartmentSizes,
  findCompartment,
  getValue,
  type CompartmentData,
  type JsonValue,
} from '../../src/session/index.js';
import { COUNT_KEY } from './counter-routes.js';

/*
 * Where the shop keeps its state in the session. Each screen owns a compartment; leaving the
 * screen leaves the compartment, so nothing of an abandoned checkout stays behind:
 *   (root)             count, lastOrder
 *   cart               items
 *   checkout/shipping  name, street, city, postcode
 *   checkout/payment   method, holder
 */
export const CART = 'cart';
export const CHECKOUT = 'checkout';
export const SHIPPING = 'checkout/shipping';
export const PAYMENT = 'checkout/payment';
export const LAST_ORDER_KEY = 'lastOrder';

/** One line of the cart. */
export type CartLine = { item: string; quantity: number };

/** The checkout screen the session is on, derived from the compartments that exist. */
export type CheckoutStep = 'cart' | 'shipping' | 'payment' | 'review';

/** Everything the demo page renders, answered by `GET /api/shop` and every shop write. */
export interface ShopView {
  sessionId: string | undefined;
  node: string;
  version: number;
  count: number;
  cart: CartLine[];
  checkout: {
    step: CheckoutStep;
    shipping: Record<string, JsonValue> | null;
    payment: Record<string, JsonValue> | null;
  };
  lastOrder: JsonValue | null;
  compartments: Array<{ path: string; bytes: number }>;
}

/** The cart's lines, ignoring anything malformed. */
export function readCart(data: CompartmentData): CartLine[] {
  const items = getValue(data, CART, 'items');
  if (!Array.isArray(items)) return [];
  const lines: CartLine[] = [];
  for (const line of items) {
    if (line === null || typeof line !== 'object' || Array.isArray(line)) continue;
    const { item, quantity } = line;
    if (typeof item === 'string' && typeof quantity === 'number') lines.push({ item, quantity });
  }
  return lines;
}

/** The values of the compartment at `path`, or null when it is absent or empty. */
function valuesOf(data: CompartmentData, path: string): Record<string, JsonValue> | null {
  const compartment = findCompartment(data, path);
  if (compartment === undefined || Object.keys(compartment.values).length === 0) return null;
  return compartment.values;
}

/** The checkout step: no checkout → cart; payment entered → payment, or review once filled. */
export function checkoutStepOf(data: CompartmentData): CheckoutStep {
  if (findCompartment(data, CHECKOUT) === undefined) return 'cart';
  if (findCompartment(data, PAYMENT) !== undefined) return valuesOf(data, PAYMENT) ? 'review' : 'payment';
  return 'shipping';
}

/** Builds the page's view of the session from one consistent snapshot. */
export function buildShopView(session: SessionHandle, nodeId: string): ShopView {
  const version = session.version;
  const data = session.data;
  const count = getValue(data, '', COUNT_KEY);
  return {
    sessionId: session.id,
    node: nodeId,
    version,
    count: typeof count === 'number' ? count : 0,
    cart: readCart(data),
    checkout: {
      step: checkoutStepOf(data),
      shipping: valuesOf(data, SHIPPING),
      payment: valuesOf(data, PAYMENT),
    },
    lastOrder: getValue(data, '', LAST_ORDER_KEY) ?? null,
    compartments: compartmentSizes(data),
  };
}
