export {
  HealthChecker,
  type HealthCheckerOptions,
  type FailureEvidence,
  type HealthCheckResult,
  type HealthEvents,
  type HealthStatus,
  type HealthTarget,
} from './health-checker.js';
export { healthSettingsFrom, type HealthSettings } from './health-settings.js';
