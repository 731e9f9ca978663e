export * from './engine.js';
export * from './policy.js';
export * from './config.js';
export * from './link.js';
export * from './spent.js';
export * from './metrics.js';
export * from './reload.js';
export * from './identity-store.js';
