export * from './engine.js';
export * from './policy.js';
