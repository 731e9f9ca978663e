export { runDemo, printDemo, type DemoResult } from './demo.js';
