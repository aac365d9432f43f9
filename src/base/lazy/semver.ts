// semver, for modules that load it lazily: `await import('../base/lazy/semver.js')`. A lazy import
// of a CommonJS package straight from our code keeps only its default export in the bundle
// (esbuild's code splitting), so the named exports are re-exported here, from a static import.
export { clean, maxSatisfying, validRange } from 'semver';
