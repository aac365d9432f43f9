// cron-parser, for modules that load it lazily: `await import('./lazy/cron-parser.js')`. A lazy import of a
// CommonJS package straight from our code keeps only its default export in the bundle (esbuild's
// code splitting), so the named exports are re-exported here, from a static import it resolves.
export { CronExpressionParser } from 'cron-parser';
