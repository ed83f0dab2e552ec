export { buildDemoApp, type DemoAppOptions } from './app.js';
export { startDemoNode, runDemoNode, type DemoNode, type DemoNodeOptions } from './server.js';
