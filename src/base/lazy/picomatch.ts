// picomatch, for modules that load it lazily: `await import('./lazy/picomatch.js')`. See
// cron-parser.ts here for why a lazy import of a CommonJS package goes through this folder.
export { default as picomatch } from 'picomatch';
