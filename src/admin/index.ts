export { buildAdminServer, type AdminControl, type AdminState } from './admin-server.js';
export { isLoopbackHost, isTokenValid } from './admin-auth.js';
export { EventLog, type LoggedEvent } from './event-log.js';
