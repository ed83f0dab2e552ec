export { sessionPlugin, type SessionPluginOptions } from './session-plugin.js';
export { SessionHandle, type SessionWrite } from './session-handle.js';
