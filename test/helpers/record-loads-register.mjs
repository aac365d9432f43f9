// Given to node as --import: installs record-loads.mjs as a module loader hook.
import { register } from 'node:module';

register('./record-loads.mjs', import.meta.url);
