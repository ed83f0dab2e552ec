export { SessionStore } from './session-store.js';
export type {
  SessionEntry,
  SessionState,
  SessionStoreOptions,
  StoreEvents,
  StoreMetrics,
} from './session-types.js';
export {
  compartmentSizes,
  createSessionData,
  deleteValue,
  enterCompartment,
  findCompartment,
  getValue,
  leaveCompartment,
  listCompartments,
  setValue,
} from './compartments.js';
export type { CompartmentData, JsonValue } from './compartments.js';
