export {
  FailoverManager,
  type FailoverEvents,
  type MoveReason,
  type MoveReport,
} from './failover-manager.js';
export { SessionInstaller, INSTALL_PATH, EVICT_PATH } from './session-installer.js';
