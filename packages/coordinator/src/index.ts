export * from './coordinator.js';
export * from './server.js';
export * from './config.js';
export * from './gateway.js';
export * from './metrics.js';
export * from './reload.js';
