// node-cron, for modules that load it lazily: `await import('./lazy/node-cron.js')`. A lazy import of a
// CommonJS package straight from our code keeps only its default export in the bundle (esbuild's
// code splitting), so the named exports are re-exported here, from a static import it resolves.
export { validateDetailed } from 'node-cron';
