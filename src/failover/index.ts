export { FailoverManager, type FailoverEvents, type FailoverOptions } from './failover-manager.js';
export type { MoveReason, MoveReport } from './move-report.js';
export { SessionInstaller, INSTALL_PATH, EVICT_PATH } from './session-installer.js';
